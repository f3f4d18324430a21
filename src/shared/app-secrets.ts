import { z } from 'zod';
import { loadConfigOrExit, type Config } from './config.js';

/** A secret's value: a JSON object of environment variables (strings; numbers and booleans are stringified). */
const SecretEnvironment = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name'),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);

/** Reads a secret's string value; the default reads it from AWS Secrets Manager. */
export type SecretReader = (secretId: string) => Promise<string | undefined>;

/** Reads a secret with @aws-sdk/client-secrets-manager, loaded only when a secret is configured. */
const readFromSecretsManager: SecretReader = async (secretId) => {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({});
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    return SecretString;
  } finally {
    client.destroy();
  }
};

/**
 * The environment with the `APP_SECRET_ARN` secret merged over it, for entries that run where
 * credentials live in Secrets Manager (Lambda): the secret is a JSON object of environment
 * variables such as DATABASE_URL and REDIS_URL. Without APP_SECRET_ARN it returns `env` as is and
 * loads nothing. Call it once per process or container, before `loadConfig`. `process.env`
 * itself is not changed, so secrets never leak into child processes.
 * @throws Error naming the secret when it cannot be read or is not such an object.
 */
export async function loadAppSecrets(
  env: NodeJS.ProcessEnv = process.env,
  readSecret: SecretReader = readFromSecretsManager,
): Promise<NodeJS.ProcessEnv> {
  const secretId = env.APP_SECRET_ARN;
  if (!secretId) return env;
  const failed = (reason: string, cause?: unknown) =>
    new Error(`Could not load APP_SECRET_ARN ${secretId}: ${reason}`, { cause });
  let value: string | undefined;
  try {
    value = await readSecret(secretId);
  } catch (error) {
    throw failed(String(error), error);
  }
  if (value === undefined) throw failed('the secret has no string value');
  // Neither reason quotes the value: JSON.parse's message would show part of the secret.
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw failed('its value is not valid JSON');
  }
  const parsed = SecretEnvironment.safeParse(json);
  if (!parsed.success) throw failed('its value is not a JSON object of environment variables');
  return { ...env, ...parsed.data };
}

/**
 * Every process entry's configuration (API, worker, npm start, migrate, seed): the environment
 * with APP_SECRET_ARN's secret merged over it, validated; or a clear message and exit code 1.
 */
export async function loadProcessConfigOrExit(): Promise<Config> {
  return loadConfigOrExit(await loadAppSecretsOrExit());
}

/** For process entries: the merged environment, or a clear message and exit code 1. */
async function loadAppSecretsOrExit(env: NodeJS.ProcessEnv = process.env): Promise<NodeJS.ProcessEnv> {
  try {
    return await loadAppSecrets(env);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}
