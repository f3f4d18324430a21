import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getExpressionAst, getReferencesInExpression, parse } from '@cdktf/hcl2json';
import { beforeAll, describe, expect, it } from 'vitest';

/*
 * infra/*.tf, checked offline: `terraform init` cannot download providers here or in CI, so
 * `terraform validate` cannot run. @cdktf/hcl2json (HashiCorp's HCL parser compiled to wasm)
 * parses the files and finds the references in every expression; the checks below cover what
 * needs no provider schema: declarations, the queue wiring, IAM actions and secrets.
 */

const INFRA_DIR = fileURLToPath(new URL('../../infra/', import.meta.url));

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type Body = { [key: string]: Json };
type Expression = NonNullable<Awaited<ReturnType<typeof getExpressionAst>>>;

/** One Terraform configuration (a directory's .tf files) as hcl2json sees it. */
interface TerraformConfig {
  files: Map<string, Body>;
  variables: Map<string, Body>;
  locals: Map<string, Json>;
  resources: Map<string, Body>;
  dataSources: Map<string, Body>;
  modules: Set<string>;
  providers: Set<string>;
}

/** A block appears as an array of bodies; a missing block as nothing. */
function bodies(value: Json | undefined): Body[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.filter((item): item is Body => typeof item === 'object' && item !== null && !Array.isArray(item));
}

function body(value: Json | undefined, what: string): Body {
  const [first] = bodies(value);
  if (!first) throw new Error(`missing block: ${what}`);
  return first;
}

function labelled(value: Json | undefined): Map<string, Body> {
  const result = new Map<string, Body>();
  for (const group of bodies(value)) {
    for (const [name, block] of Object.entries(group)) {
      const [first] = bodies(block);
      if (first) result.set(name, first);
    }
  }
  return result;
}

async function parseConfig(sources: Record<string, string>): Promise<TerraformConfig> {
  const config: TerraformConfig = {
    files: new Map(),
    variables: new Map(),
    locals: new Map(),
    resources: new Map(),
    dataSources: new Map(),
    modules: new Set(),
    providers: new Set(),
  };
  for (const [file, text] of Object.entries(sources)) {
    const parsed = (await parse(file, text)) as Body;
    config.files.set(file, parsed);
    for (const [name, block] of labelled(parsed.variable)) config.variables.set(name, block);
    for (const locals of bodies(parsed.locals)) {
      for (const [name, expression] of Object.entries(locals)) config.locals.set(name, expression);
    }
    for (const kind of ['resource', 'data'] as const) {
      const target = kind === 'resource' ? config.resources : config.dataSources;
      for (const group of bodies(parsed[kind])) {
        for (const [type, named] of Object.entries(group)) {
          for (const [name, block] of labelled(named)) target.set(`${type}.${name}`, block);
        }
      }
    }
    for (const name of labelled(parsed.module).keys()) config.modules.add(name);
    for (const terraform of bodies(parsed.terraform)) {
      for (const required of bodies(terraform.required_providers)) {
        for (const name of Object.keys(required)) config.providers.add(name);
      }
    }
  }
  return config;
}

function stringsIn(value: Json, found: string[] = []): string[] {
  if (typeof value === 'string') found.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, found);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) stringsIn(item, found);
  return found;
}

/** Every traversal (`var.x`, `aws_sqs_queue.q.arn`, …) in a value's expressions. */
async function referencesIn(file: string, value: Json): Promise<string[]> {
  const found: string[] = [];
  for (const text of stringsIn(value)) {
    if (!text.includes('${') && !text.includes('%{')) continue;
    for (const reference of await getReferencesInExpression(file, text)) found.push(reference.value);
  }
  return found;
}

/** Roots that Terraform itself defines; anything else must be a declared name. */
const BUILT_IN_ROOTS = new Set(['path', 'terraform', 'count', 'each', 'self']);

/** References to variables, locals, modules, resources or data sources that nothing declares. */
async function findUndeclaredReferences(config: TerraformConfig): Promise<string[]> {
  const problems: string[] = [];
  const resourceTypes = new Set([...config.resources.keys()].map((key) => key.split('.')[0]));
  for (const [file, parsed] of config.files) {
    // A variable's type (`string`, `list(string)`) is a type expression, not a reference.
    const variables = [...labelled(parsed.variable).values()].map(({ type: _type, ...rest }) => rest);
    const checked: Body = { ...parsed, variable: variables };
    for (const reference of await referencesIn(file, checked)) {
      const [root = '', first = '', second = ''] = reference.split('.');
      const declared = (() => {
        switch (root) {
          case 'var':
            return config.variables.has(first);
          case 'local':
            return config.locals.has(first);
          case 'module':
            return config.modules.has(first);
          case 'data':
            return config.dataSources.has(`${first}.${second}`);
          default:
            if (BUILT_IN_ROOTS.has(root)) return true;
            // A resource type is <provider>_<kind>; anything else is a typo or an unknown name.
            if (resourceTypes.has(root) || config.providers.has(root.split('_')[0] ?? '')) {
              return config.resources.has(`${root}.${first}`);
            }
            return false;
        }
      })();
      if (!declared) problems.push(`${file}: ${reference}`);
    }
  }
  return [...new Set(problems)].sort();
}

/** The expression inside `${…}`, for attributes that are a single interpolation. */
function expressionOf(value: Json | undefined): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') throw new Error(`not an expression: ${JSON.stringify(value)}`);
  const match = /^\$\{([\s\S]*)\}$/.exec(value);
  return match?.[1] ?? JSON.stringify(value);
}

type Value = number | string | boolean | null;

/**
 * Evaluates the arithmetic subset of HCL the visibility-timeout rule is written in: numbers,
 * variables (their defaults unless overridden), locals, + - * /, comparisons, && || !,
 * conditionals, coalesce/max/min. Anything else throws, so the test cannot pass by accident.
 */
async function evaluate(
  config: TerraformConfig,
  expression: string,
  overrides: Record<string, Value> = {},
): Promise<Value> {
  const ast = await getExpressionAst('eval.tf', expression);
  if (!ast) throw new Error(`cannot parse ${expression}`);
  return evaluateNode(config, ast, overrides);
}

async function evaluateNode(
  config: TerraformConfig,
  node: Expression,
  overrides: Record<string, Value>,
): Promise<Value> {
  const child = (index: number) => {
    const found = node.children[index];
    if (!found) throw new Error(`malformed ${node.type}: ${node.meta.value}`);
    return evaluateNode(config, found, overrides);
  };
  // Parentheses come back as a node of type "", which the published union type leaves out.
  switch (node.type as string) {
    case 'literalValue': {
      const meta = node.meta as { type: string; value: string };
      if (meta.type === 'number') return Number(meta.value);
      if (meta.type === 'bool') return meta.value === 'true';
      if (meta.value === 'null') return null;
      return meta.value;
    }
    case '':
    case 'templateWrap':
      return child(0);
    case 'template':
      // A quoted string: one literal part (a string with interpolations is left out on purpose).
      if (node.children.length !== 1) throw new Error(`cannot evaluate ${node.meta.value}`);
      return child(0);
    case 'scopeTraversal': {
      const [root, name = ''] = (node.meta as { fullAccessor: string }).fullAccessor.split('.');
      if (root === 'var') {
        if (name in overrides) return overrides[name] ?? null;
        const variable = config.variables.get(name);
        if (!variable) throw new Error(`undeclared var.${name}`);
        return (variable.default ?? null) as Value;
      }
      if (root === 'local') {
        const local = config.locals.get(name);
        if (local === undefined) throw new Error(`undeclared local.${name}`);
        return evaluate(config, expressionOf(local), overrides);
      }
      throw new Error(`cannot evaluate ${node.meta.value}`);
    }
    case 'unaryOp': {
      const operand = await child(0);
      const { operator } = node.meta as { operator: string };
      if (operator === 'negate') return -Number(operand);
      if (operator === 'logicalNot') return !operand;
      throw new Error(`unsupported operator ${operator}`);
    }
    case 'binaryOp': {
      const [left, right] = [await child(0), await child(1)];
      const operators: Record<string, (a: Value, b: Value) => Value> = {
        add: (a, b) => Number(a) + Number(b),
        subtract: (a, b) => Number(a) - Number(b),
        multiply: (a, b) => Number(a) * Number(b),
        divide: (a, b) => Number(a) / Number(b),
        greaterThan: (a, b) => Number(a) > Number(b),
        greaterThanOrEqual: (a, b) => Number(a) >= Number(b),
        lessThan: (a, b) => Number(a) < Number(b),
        lessThanOrEqual: (a, b) => Number(a) <= Number(b),
        equal: (a, b) => a === b,
        notEqual: (a, b) => a !== b,
        logicalAnd: (a, b) => Boolean(a) && Boolean(b),
        logicalOr: (a, b) => Boolean(a) || Boolean(b),
      };
      const { operator } = node.meta as { operator: string };
      const apply = operators[operator];
      if (!apply) throw new Error(`unsupported operator ${operator}`);
      return apply(left, right);
    }
    case 'conditional':
      return (await child(0)) ? child(1) : child(2);
    case 'function': {
      const args = await Promise.all(node.children.map((_, index) => child(index)));
      const { name } = node.meta as { name: string };
      if (name === 'coalesce') return args.find((arg) => arg !== null && arg !== '') ?? null;
      if (name === 'max') return Math.max(...args.map(Number));
      if (name === 'min') return Math.min(...args.map(Number));
      throw new Error(`unsupported function ${name}`);
    }
    default:
      throw new Error(`cannot evaluate ${node.type}: ${node.meta.value}`);
  }
}

/** A local's expression together with those of every local it uses, transitively. */
function withLocals(config: TerraformConfig, value: Json, seen = new Set<string>()): string {
  const texts = stringsIn(value);
  for (const text of [...texts]) {
    for (const [, name = ''] of text.matchAll(/\blocal\.([A-Za-z0-9_]+)/g)) {
      if (seen.has(name)) continue;
      seen.add(name);
      const local = config.locals.get(name);
      if (local !== undefined) texts.push(withLocals(config, local, seen));
    }
  }
  return texts.join('\n');
}

function resource(config: TerraformConfig, key: string): Body {
  const found = config.resources.get(key) ?? config.dataSources.get(key.replace(/^data\./, ''));
  if (!found) throw new Error(`${key} is not declared`);
  return found;
}

function resourcesOfType(config: TerraformConfig, type: string): [string, Body][] {
  return [...config.resources].filter(([key]) => key.startsWith(`${type}.`));
}

function readInfra(): Record<string, string> {
  const files = readdirSync(INFRA_DIR)
    .filter((file) => file.endsWith('.tf'))
    .sort();
  return Object.fromEntries(files.map((file) => [file, readFileSync(join(INFRA_DIR, file), 'utf8')]));
}

let infra: TerraformConfig;

beforeAll(async () => {
  infra = await parseConfig(readInfra());
});

describe('infra/*.tf parse and declare what they use', () => {
  it('has the expected files, and every one parses', async () => {
    const sources = readInfra();
    expect(Object.keys(sources)).toEqual(
      expect.arrayContaining([
        'versions.tf',
        'variables.tf',
        'outputs.tf',
        'main.tf',
        'queue.tf',
        'lambda.tf',
        'iam.tf',
      ]),
    );
    for (const [file, text] of Object.entries(sources)) {
      await expect(parse(file, text), file).resolves.toBeTypeOf('object');
    }
  });

  it('keeps the layout terraform fmt produces: two-space indents, no tabs or trailing blanks', () => {
    // CI has no terraform binary; `terraform fmt -check -recursive infra` is the full check.
    for (const [file, text] of Object.entries(readInfra())) {
      expect(text.endsWith('\n') && !text.endsWith('\n\n'), `${file} ends with one newline`).toBe(true);
      text.split('\n').forEach((line, index) => {
        const where = `${file}:${index + 1}`;
        expect(line, where).not.toMatch(/\t|[ ]+$/);
        expect((/^ */.exec(line)?.[0].length ?? 0) % 2, where).toBe(0);
      });
    }
  });

  it('refers only to declared variables, locals, modules, resources and data sources', async () => {
    expect(await findUndeclaredReferences(infra)).toEqual([]);
  });

  it('catches an undeclared variable, local, resource, data source and module, and a typo', async () => {
    const broken = await parseConfig({
      'broken.tf': `
        variable "declared" {
          type        = string
          description = "x"
        }
        locals {
          known = var.declared
        }
        resource "aws_sqs_queue" "known" {
          name   = "\${var.declared}-\${var.missing}"
          delay  = local.unknown
          policy = aws_sqs_queue.absent.arn
          region = data.aws_region.absent.region
          other  = module.absent.id
          typo   = lcoal.known
          fine   = [for s in aws_sqs_queue.known[*] : s.arn]
        }
      `,
    });
    expect(await findUndeclaredReferences(broken)).toEqual([
      'broken.tf: aws_sqs_queue.absent.arn',
      'broken.tf: data.aws_region.absent.region',
      'broken.tf: lcoal.known',
      'broken.tf: local.unknown',
      'broken.tf: module.absent.id',
      'broken.tf: var.missing',
    ]);
  });

  it('describes and types every variable', () => {
    expect(infra.variables.size).toBeGreaterThan(20);
    for (const [name, variable] of infra.variables) {
      expect(variable.description, name).toMatch(/\S{3}/);
      expect(variable.type, name).toMatch(/^\$\{.+\}$/);
    }
  });

  it('pins Terraform and the aws and random providers, and uses no modules', () => {
    const terraform = body(infra.files.get('versions.tf')?.terraform, 'terraform');
    expect(terraform.required_version).toBe('>= 1.6');
    expect([...infra.providers].sort()).toEqual(['aws', 'random']);
    expect(infra.modules.size).toBe(0);
  });
});

describe('the queue wiring', () => {
  const mainQueue = () => resource(infra, 'aws_sqs_queue.purchases');
  const deadLetterQueue = () => resource(infra, 'aws_sqs_queue.purchases_dlq');

  it('is a FIFO queue without content-based deduplication, redriving to a FIFO dead-letter queue', async () => {
    const queue = mainQueue();
    expect(queue.name).toBe('${local.name}-purchases.fifo');
    expect(queue.fifo_queue).toBe(true);
    expect(queue.content_based_deduplication).toBe(false);
    expect(queue.deduplication_scope).toBe('queue');
    expect(queue.sqs_managed_sse_enabled).toBe(true);

    const redrive = String(queue.redrive_policy);
    expect(redrive).toMatch(/^\$\{jsonencode\(/);
    const target = /deadLetterTargetArn\s*=\s*aws_sqs_queue\.([a-z0-9_]+)\.arn/.exec(redrive)?.[1];
    expect(target).toBe('purchases_dlq');
    const maxReceiveCount = /maxReceiveCount\s*=\s*(.+)/.exec(redrive)?.[1]?.trim() ?? '';
    expect(await evaluate(infra, maxReceiveCount)).toBe(5);

    const dlq = deadLetterQueue();
    expect(dlq.fifo_queue).toBe(true);
    expect(String(dlq.name)).toMatch(/\.fifo$/);
    expect(dlq.sqs_managed_sse_enabled).toBe(true);
    expect(await evaluate(infra, expressionOf(dlq.message_retention_seconds))).toBe(14 * 24 * 3600);
  });

  it('lets only the purchases queue redrive into the dead-letter queue', async () => {
    const [allow, ...more] = resourcesOfType(infra, 'aws_sqs_queue_redrive_allow_policy');
    expect(more).toEqual([]);
    const [, policy] = allow ?? [];
    expect(policy?.queue_url).toBe('${aws_sqs_queue.purchases_dlq.id}');
    expect(String(policy?.redrive_allow_policy)).toMatch(/redrivePermission\s*=\s*"byQueue"/);
    expect(String(policy?.redrive_allow_policy)).toMatch(/sourceQueueArns\s*=\s*\[aws_sqs_queue\.purchases\.arn\]/);
  });

  it('feeds the worker in batches with ReportBatchItemFailures and a variable maximum concurrency', () => {
    const [mapping, ...more] = resourcesOfType(infra, 'aws_lambda_event_source_mapping');
    expect(more).toEqual([]);
    const [, esm] = mapping ?? [];
    expect(esm?.event_source_arn).toBe('${aws_sqs_queue.purchases.arn}');
    expect(esm?.function_name).toBe('${aws_lambda_function.worker.arn}');
    expect(esm?.function_response_types).toEqual(['ReportBatchItemFailures']);
    expect(esm?.batch_size).toBe('${var.worker_batch_size}');
    expect(body(esm?.scaling_config, 'scaling_config').maximum_concurrency).toBe('${var.worker_max_concurrency}');

    expect(infra.variables.get('worker_batch_size')?.default).toBe(10);
    expect(infra.variables.get('worker_max_concurrency')?.default).toBe(10);
    const validation = body(infra.variables.get('worker_max_concurrency')?.validation, 'validation');
    expect(String(validation.condition)).toContain('var.worker_max_concurrency >= 2');
    expect(String(validation.condition)).toContain('var.worker_max_concurrency <= 1000');
  });

  it('keeps the visibility timeout at least six times the worker timeout, and enforces it', async () => {
    const queue = mainQueue();
    expect(queue.visibility_timeout_seconds).toBe('${local.queue_visibility_timeout_seconds}');
    const visibility = expressionOf(queue.visibility_timeout_seconds);
    const workerTimeout = expressionOf(resource(infra, 'aws_lambda_function.worker').timeout);
    expect(workerTimeout).toBe('var.worker_timeout_seconds');

    // With the defaults: 6 x 60 s.
    expect(await evaluate(infra, workerTimeout)).toBe(60);
    expect(await evaluate(infra, visibility)).toBe(360);
    // It follows the worker's timeout when that changes.
    expect(await evaluate(infra, visibility, { worker_timeout_seconds: 900 })).toBe(5400);

    // The precondition holds for the defaults and rejects an override that is too short.
    const preconditions = bodies(body(queue.lifecycle, 'lifecycle').precondition);
    const rule = preconditions.find((precondition) =>
      String(precondition.condition).includes('6 * var.worker_timeout_seconds'),
    );
    expect(rule, 'a precondition comparing with 6 * var.worker_timeout_seconds').toBeDefined();
    const condition = expressionOf(rule?.condition);
    expect(await evaluate(infra, condition)).toBe(true);
    expect(await evaluate(infra, condition, { queue_visibility_timeout_seconds: 600 })).toBe(true);
    expect(await evaluate(infra, condition, { queue_visibility_timeout_seconds: 300 })).toBe(false);
    expect(
      await evaluate(infra, condition, { worker_timeout_seconds: 120, queue_visibility_timeout_seconds: 360 }),
    ).toBe(false);
  });

  it('alarms when the dead-letter queue holds a message', () => {
    const alarms = resourcesOfType(infra, 'aws_cloudwatch_metric_alarm').map(([, alarm]) => alarm);
    const alarm = alarms.find((candidate) => candidate.metric_name === 'ApproximateNumberOfMessagesVisible');
    expect(alarm?.namespace).toBe('AWS/SQS');
    expect(alarm?.comparison_operator).toBe('GreaterThanThreshold');
    expect(alarm?.threshold).toBe(0);
    expect(body(alarm?.dimensions, 'dimensions').QueueName).toBe('${aws_sqs_queue.purchases_dlq.name}');
    expect(alarm?.alarm_actions).toBe('${var.alarm_sns_topic_arns}');
    expect(infra.variables.get('alarm_sns_topic_arns')?.default).toEqual([]);
  });
});

describe('IAM', () => {
  /** What AWSLambdaVPCAccessExecutionRole grants; EC2 cannot scope these to resources. */
  const ENI_ACTIONS = [
    'ec2:AssignPrivateIpAddresses',
    'ec2:CreateNetworkInterface',
    'ec2:DeleteNetworkInterface',
    'ec2:DescribeNetworkInterfaces',
    'ec2:DescribeSubnets',
    'ec2:UnassignPrivateIpAddresses',
  ];

  function statementsOf(document: Body): Body[] {
    const dynamic = bodies(document.dynamic).flatMap((blocks) => bodies(blocks.statement));
    return [...bodies(document.statement), ...dynamic.flatMap((block) => bodies(block.content))];
  }

  /** Every policy attached anywhere, as `[resource.attribute, value]`. */
  function attachedPolicies(): [string, Json][] {
    const found: [string, Json][] = [];
    for (const [key, block] of infra.resources) {
      for (const attribute of ['policy', 'assume_role_policy', 'inline_policy'] as const) {
        if (block[attribute] !== undefined) found.push([`${key}.${attribute}`, block[attribute]]);
      }
    }
    return found;
  }

  const policyDocuments = () => [...infra.dataSources].filter(([key]) => key.startsWith('aws_iam_policy_document.'));

  it('grants no wildcard action, and "*" resources only to the EC2 network-interface actions', () => {
    expect(policyDocuments().length).toBeGreaterThanOrEqual(4);
    for (const [key, document] of policyDocuments()) {
      expect(document.override_policy_documents, key).toBeUndefined();
      for (const statement of statementsOf(document)) {
        expect(statement.not_actions, key).toBeUndefined();
        const actions = statement.actions;
        expect(Array.isArray(actions), `${key}: actions must be a literal list`).toBe(true);
        for (const action of actions as Json[]) {
          expect(action, key).not.toContain('*');
          expect(action, key).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
        }
        if (JSON.stringify(statement.resources ?? []).includes('"*"')) {
          for (const action of actions as string[]) expect(ENI_ACTIONS, `${key}: ${action} on "*"`).toContain(action);
        }
      }
    }
  });

  it('attaches policies only from those documents', () => {
    for (const [key, policy] of attachedPolicies()) {
      expect(policy, key).toMatch(/^\$\{data\.aws_iam_policy_document\.[a-z0-9_]+\.json\}$/);
    }
    const rolePolicies = resourcesOfType(infra, 'aws_iam_role_policy');
    expect(rolePolicies.map(([key]) => key).sort()).toEqual([
      'aws_iam_role_policy.api',
      'aws_iam_role_policy.migrate',
      'aws_iam_role_policy.worker',
    ]);
  });

  it('lets the API send and the worker consume, on the purchases queue only', () => {
    const actionsOn = (document: string) =>
      statementsOf(resource(infra, `data.aws_iam_policy_document.${document}`))
        .filter((statement) => JSON.stringify(statement.resources).includes('aws_sqs_queue.purchases.arn'))
        .flatMap((statement) => statement.actions as string[])
        .sort();
    expect(actionsOn('api')).toEqual(['sqs:GetQueueAttributes', 'sqs:SendMessage']);
    expect(actionsOn('worker')).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:ReceiveMessage',
    ]);
    expect(actionsOn('migrate')).toEqual([]);
  });

  it('lets the API and the worker read the app secret, and only the migration function the migrate secret', () => {
    /** Every policy document a role's policy is made of, itself and its sources, transitively. */
    const documentsOf = (name: string): Body[] => {
      const document = resource(infra, `data.aws_iam_policy_document.${name}`);
      const sources = (document.source_policy_documents ?? []) as string[];
      return [
        document,
        ...sources.flatMap((source) => {
          const [, sourceName = ''] = /^\$\{data\.aws_iam_policy_document\.([a-z0-9_]+)\.json\}$/.exec(source) ?? [];
          return documentsOf(sourceName);
        }),
      ];
    };
    const secretsReadBy = (name: string) =>
      documentsOf(name)
        .flatMap(statementsOf)
        .filter((statement) => (statement.actions as string[]).includes('secretsmanager:GetSecretValue'))
        .flatMap((statement) => statement.resources as string[])
        .sort();
    expect(secretsReadBy('api')).toEqual(['${aws_secretsmanager_secret.app.arn}']);
    expect(secretsReadBy('worker')).toEqual(['${aws_secretsmanager_secret.app.arn}']);
    expect(secretsReadBy('migrate')).toEqual(['${aws_secretsmanager_secret.migrate.arn}']);
  });
});

describe('the functions', () => {
  const FUNCTIONS = ['api', 'worker', 'migrate'] as const;
  const BASE_ENVIRONMENT = ['APP_SECRET_ARN', 'LOG_LEVEL', 'NODE_OPTIONS', 'DATABASE_POOL_MAX'];
  /** What the API and the worker get besides; the migration function touches neither queue nor Redis. */
  const APP_ENVIRONMENT = [
    'QUEUE_DRIVER',
    'SQS_QUEUE_URL',
    'REDIS_KEY_PREFIX',
    'REDIS_CLUSTER',
    'IDEMPOTENCY_TTL_SECONDS',
  ];
  const environmentOf = (name: string) =>
    withLocals(infra, body(resource(infra, `aws_lambda_function.${name}`).environment, 'environment'));
  /** A random_password of at least 32 characters that a URL or a header carries as it is. */
  const expectUrlSafe = (key: string) => {
    const password = resource(infra, key);
    expect(password.length, key).toBeGreaterThanOrEqual(32);
    // Letters and digits only, or else only punctuation that URLs leave as it is (random's
    // default set, used when override_special is unset, has characters they do not).
    if (password.special !== false) expect(password.override_special, key).toMatch(/^[-_.~]*$/);
  };
  /** A secret's JSON, as its `jsonencode({ … })` expression. */
  const secretOf = (name: string) => String(resource(infra, `aws_secretsmanager_secret_version.${name}`).secret_string);

  it('run index.handler from the built zips, with a source hash, in the VPC, logging to their own group', () => {
    for (const name of FUNCTIONS) {
      const fn = resource(infra, `aws_lambda_function.${name}`);
      expect(fn.handler, name).toBe('index.handler');
      expect(fn.runtime, name).toBe('${var.lambda_runtime}');
      expect(fn.architectures, name).toEqual(['${var.lambda_architecture}']);
      expect(fn.filename, name).toBe(`\${local.artifact_paths.${name}}`);
      expect(fn.source_code_hash, name).toBe(`\${filebase64sha256(local.artifact_paths.${name})}`);
      expect(body(fn.vpc_config, 'vpc_config').security_group_ids, name).toEqual(['${aws_security_group.lambda.id}']);
      expect(body(fn.logging_config, 'logging_config').log_group, name).toBe(
        `\${aws_cloudwatch_log_group.${name}.name}`,
      );
      const logGroup = resource(infra, `aws_cloudwatch_log_group.${name}`);
      expect(logGroup.name, name).toBe(`/aws/lambda/\${local.function_names.${name}}`);
      expect(logGroup.retention_in_days, name).toBe('${var.log_retention_days}');
      expect(withLocals(infra, infra.locals.get('artifact_paths') ?? null), name).toContain(
        `/../dist/lambda/${name}.zip`,
      );
    }
    const runtime = body(infra.variables.get('lambda_runtime')?.validation, 'validation');
    expect(runtime.condition).toBe('${contains(["nodejs22.x", "nodejs24.x"], var.lambda_runtime)}');
  });

  it('get the agreed environment, and no database URL, Redis URL, password or token', () => {
    for (const name of FUNCTIONS) {
      const environment = environmentOf(name);
      for (const key of BASE_ENVIRONMENT) expect(environment, `${name} ${key}`).toMatch(new RegExp(`\\b${key}\\s*=`));
      for (const key of APP_ENVIRONMENT) {
        const set = new RegExp(`\\b${key}\\s*=`);
        if (name === 'migrate') expect(environment, `${name} ${key}`).not.toMatch(set);
        else expect(environment, `${name} ${key}`).toMatch(set);
      }
      if (name !== 'migrate') expect(environment, name).toMatch(/QUEUE_DRIVER\s*=\s*"sqs"/);
      expect(environment, name).toMatch(/NODE_OPTIONS\s*=\s*"--enable-source-maps"/);
      const secret = name === 'migrate' ? 'migrate' : 'app';
      expect(environment, name).toMatch(
        new RegExp(`APP_SECRET_ARN\\s*=\\s*aws_secretsmanager_secret\\.${secret}\\.arn`),
      );
      expect(environment, name).not.toMatch(
        /DATABASE_URL|REDIS_URL|ADMIN_TOKEN|APP_DATABASE|random_password|password|auth_token|secret_string/i,
      );
      const workerOnly = /PAYMENT_DELAY_MS\s*=.*\n[\s\S]*PAYMENT_DECLINE_RATE\s*=/;
      if (name === 'worker') expect(environment).toMatch(workerOnly);
      else expect(environment, name).not.toMatch(/PAYMENT_DELAY_MS|PAYMENT_DECLINE_RATE/);
    }
  });

  it("log in Lambda's JSON format", () => {
    for (const name of FUNCTIONS) {
      const logging = body(resource(infra, `aws_lambda_function.${name}`).logging_config, 'logging_config');
      expect(logging.log_format, name).toBe('JSON');
      // pino's numeric levels would all count as INFO: a level filter could drop payonce's errors.
      expect(logging.application_log_level, name).toBeUndefined();
    }
  });

  it('keep the credentials in the secrets and out of every non-sensitive output', () => {
    const app = secretOf('app');
    expect(app).toMatch(
      /DATABASE_URL\s*=\s*"postgres:\/\/\$\{local\.db_app_username\}:\$\{urlencode\(random_password\.db_app\.result\)\}@\$\{local\.database_location\}"/,
    );
    expect(app).toMatch(/REDIS_URL\s*=\s*"rediss:\/\/:\$\{urlencode\(random_password\.redis\.result\)\}@/);
    expect(resource(infra, 'aws_elasticache_replication_group.main').auth_token).toBe(
      '${random_password.redis.result}',
    );
    expect(resource(infra, 'aws_db_instance.main').password).toBe('${random_password.db.result}');

    const outputs = labelled(infra.files.get('outputs.tf')?.output);
    expect([...outputs.keys()]).toEqual(expect.arrayContaining(['api_url', 'queue_url', 'dlq_url', 'migrate_command']));
    for (const [name, output] of outputs) {
      const value = withLocals(infra, output.value ?? null);
      if (/random_password|secret_version|auth_token/.test(value)) expect(output.sensitive, name).toBe(true);
    }
  });

  it('give the API and the worker the application role, and only the migration function the master user', () => {
    expect(infra.locals.get('db_app_username')).toBe('payonce_app');
    expect(infra.locals.get('db_app_username')).not.toBe(infra.locals.get('db_username'));
    expect(secretOf('app')).not.toMatch(/random_password\.db\.|local\.db_username/);
    const migrate = secretOf('migrate');
    expect(migrate).toMatch(
      /DATABASE_URL\s*=\s*"postgres:\/\/\$\{local\.db_username\}:\$\{urlencode\(random_password\.db\.result\)\}@\$\{local\.database_location\}"/,
    );
    expect(migrate).toMatch(/APP_DATABASE_ROLE\s*=\s*local\.db_app_username\b/);
    expect(migrate).toMatch(/APP_DATABASE_PASSWORD\s*=\s*random_password\.db_app\.result\b/);
    expect(migrate).not.toMatch(/REDIS_URL|ADMIN_TOKEN/);
    expectUrlSafe('random_password.db_app');
    expect(String(infra.locals.get('database_location'))).toBe(
      '${aws_db_instance.main.address}:${aws_db_instance.main.port}/${local.db_name}?sslmode=${var.database_ssl_mode}',
    );
    // The migration function runs only once its secret has a value, also under `apply -target`.
    expect(resource(infra, 'aws_lambda_function.migrate').depends_on).toContain(
      '${aws_secretsmanager_secret_version.migrate}',
    );
  });

  it('give the API its ADMIN_TOKEN through the app secret: random, long and URL-safe', () => {
    expect(secretOf('app')).toMatch(/ADMIN_TOKEN\s*=\s*random_password\.admin_token\.result\b/);
    expectUrlSafe('random_password.admin_token');
    // Nothing else reads it: no environment, no output.
    for (const [file, parsed] of infra.files) {
      if (file === 'secrets.tf') continue;
      expect(JSON.stringify(parsed), file).not.toContain('admin_token');
    }
  });

  it('route every API request to the API function through a $default route and stage', () => {
    const integration = resource(infra, 'aws_apigatewayv2_integration.api');
    expect(integration.integration_type).toBe('AWS_PROXY');
    expect(integration.payload_format_version).toBe('2.0');
    expect(integration.integration_uri).toBe('${aws_lambda_function.api.invoke_arn}');
    expect(resource(infra, 'aws_apigatewayv2_route.default').route_key).toBe('$default');
    // No integration mapping that could rewrite or drop a header (Authorization among them).
    expect(integration.request_parameters).toBeUndefined();
    const stage = resource(infra, 'aws_apigatewayv2_stage.default');
    expect(stage.name).toBe('$default');
    expect(stage.auto_deploy).toBe(true);
    expect(body(stage.access_log_settings, 'access_log_settings').destination_arn).toBe(
      '${aws_cloudwatch_log_group.api_access.arn}',
    );
    const permission = resource(infra, 'aws_lambda_permission.api_gateway');
    expect(permission.principal).toBe('apigateway.amazonaws.com');
    expect(permission.function_name).toBe('${aws_lambda_function.api.function_name}');
  });
});

describe('API Gateway', () => {
  it('adds no auth layer of its own: no authorizer, API key or usage plan, the app checks every key', () => {
    const routes = resourcesOfType(infra, 'aws_apigatewayv2_route');
    expect(routes.map(([key]) => key)).toEqual(['aws_apigatewayv2_route.default']);
    for (const [key, route] of routes) {
      expect([undefined, 'NONE'], key).toContain(route.authorization_type);
      expect(route.authorizer_id, key).toBeUndefined();
      expect(route.authorization_scopes, key).toBeUndefined();
      expect([undefined, false], key).toContain(route.api_key_required);
    }
    const types = [...infra.resources.keys()].map((key) => key.split('.')[0]);
    expect(types.filter((type) => /authorizer|api_key|usage_plan/.test(type ?? ''))).toEqual([]);
  });
});

describe('the data stores', () => {
  it('encrypt Postgres, keep it private, protected and TLS-only', () => {
    const db = resource(infra, 'aws_db_instance.main');
    expect(db.engine).toBe('postgres');
    expect(db.storage_encrypted).toBe(true);
    expect(db.publicly_accessible).toBe(false);
    expect(db.username).toBe('${local.db_username}');
    expect(infra.locals.get('db_username')).toBe('payonce');
    expect(db.deletion_protection).toBe('${var.deletion_protection}');
    expect(infra.variables.get('deletion_protection')?.default).toBe(true);
    expect(infra.variables.get('db_engine_version')?.default).toBe('16');
    const parameters = bodies(resource(infra, 'aws_db_parameter_group.main').parameter);
    expect(parameters).toContainEqual({ name: 'rds.force_ssl', value: '1' });
  });

  it('encrypt Redis in transit and at rest, with an auth token, noeviction and a replica by default', () => {
    const redis = resource(infra, 'aws_elasticache_replication_group.main');
    expect(redis.engine).toBe('redis');
    expect(redis.transit_encryption_enabled).toBe(true);
    expect(redis.at_rest_encryption_enabled).toBe(true);
    expect(infra.variables.get('redis_engine_version')?.default).toBe('7.1');
    expect(infra.variables.get('redis_replica_count')?.default).toBe(1);
    expect(infra.variables.get('redis_multi_az')?.default).toBe(true);
    const parameters = bodies(resource(infra, 'aws_elasticache_parameter_group.main').parameter);
    expect(parameters).toContainEqual({ name: 'maxmemory-policy', value: 'noeviction' });
    // ElastiCache has no appendonly parameter on Redis 7: setting it would fail the apply.
    expect(parameters.map((parameter) => parameter.name)).not.toContain('appendonly');
  });
});

describe('ElastiCache in cluster mode (redis_cluster_mode)', () => {
  const group = () => resource(infra, 'aws_elasticache_replication_group.main');
  const attribute = (name: string) => expressionOf(group()[name]);
  const CLUSTER = { redis_cluster_mode: true };

  it('is off by default: one primary and its replicas, as before', async () => {
    expect(infra.variables.get('redis_cluster_mode')).toMatchObject({ type: '${bool}', default: false });
    expect(await evaluate(infra, attribute('cluster_mode'))).toBe('disabled');
    expect(await evaluate(infra, attribute('num_cache_clusters'))).toBe(2);
    expect(await evaluate(infra, attribute('num_node_groups'))).toBeNull();
    expect(await evaluate(infra, attribute('replicas_per_node_group'))).toBeNull();
    expect(await evaluate(infra, attribute('automatic_failover_enabled'), { redis_multi_az: false })).toBe(false);
  });

  it('when on, runs redis_num_node_groups shards with redis_replica_count replicas each, failing over automatically', async () => {
    expect(infra.variables.get('redis_num_node_groups')?.default).toBe(3);
    const validation = body(infra.variables.get('redis_num_node_groups')?.validation, 'validation');
    expect(String(validation.condition)).toContain('var.redis_num_node_groups >= 1');
    expect(await evaluate(infra, attribute('cluster_mode'), CLUSTER)).toBe('enabled');
    // num_cache_clusters conflicts with the shard settings: it must be unset.
    expect(await evaluate(infra, attribute('num_cache_clusters'), CLUSTER)).toBeNull();
    expect(await evaluate(infra, attribute('num_node_groups'), { ...CLUSTER, redis_num_node_groups: 5 })).toBe(5);
    expect(await evaluate(infra, attribute('replicas_per_node_group'), { ...CLUSTER, redis_replica_count: 2 })).toBe(2);
    // ElastiCache requires automatic failover in cluster mode, whatever redis_multi_az says.
    expect(await evaluate(infra, attribute('automatic_failover_enabled'), { ...CLUSTER, redis_multi_az: false })).toBe(
      true,
    );
  });

  it('turns cluster-enabled on in a parameter group of its own, keeping noeviction', () => {
    const parameterGroup = resource(infra, 'aws_elasticache_parameter_group.main');
    expect(bodies(parameterGroup.parameter)).toContainEqual({ name: 'maxmemory-policy', value: 'noeviction' });
    const [dynamic, ...more] = bodies(body(parameterGroup.dynamic, 'dynamic').parameter);
    expect(more).toEqual([]);
    expect(dynamic?.for_each).toBe('${var.redis_cluster_mode ? [1] : []}');
    expect(body(dynamic?.content, 'content')).toEqual({ name: 'cluster-enabled', value: 'yes' });
    // A new name per mode: switching creates the new group before the old one goes.
    expect(String(parameterGroup.name)).toMatch(/%\{if var\.redis_cluster_mode\}-cluster%\{endif\}$/);
    expect(body(parameterGroup.lifecycle, 'lifecycle').create_before_destroy).toBe(true);
  });

  it('gives the functions REDIS_CLUSTER, and REDIS_URL naming the configuration endpoint in cluster mode', async () => {
    expect(withLocals(infra, infra.locals.get('app_environment') ?? null)).toMatch(
      /REDIS_CLUSTER\s*=\s*tostring\(var\.redis_cluster_mode\)/,
    );
    const endpoint = await getExpressionAst('main.tf', expressionOf(infra.locals.get('redis_endpoint')));
    expect(endpoint?.type).toBe('conditional');
    expect(endpoint?.meta).toMatchObject({
      conditionExpression: 'var.redis_cluster_mode',
      trueExpression: 'aws_elasticache_replication_group.main.configuration_endpoint_address',
      falseExpression: 'aws_elasticache_replication_group.main.primary_endpoint_address',
    });
    const secret = String(resource(infra, 'aws_secretsmanager_secret_version.app').secret_string);
    expect(secret).toMatch(/REDIS_URL\s*=\s*"rediss:\/\/:[^"]*@\$\{local\.redis_endpoint\}:/);
    expect(labelled(infra.files.get('outputs.tf')?.output).get('redis_endpoint')?.value).toBe(
      '${local.redis_endpoint}',
    );
  });
});

describe('webhooks on AWS (enable_webhooks)', () => {
  const count = (name: string) => expressionOf(resource(infra, name).count);

  it('are off by default, and need the NAT gateway when on', async () => {
    expect(infra.variables.get('enable_webhooks')).toMatchObject({ type: '${bool}', default: false });
    for (const name of [
      'aws_cloudwatch_event_rule.webhooks',
      'aws_cloudwatch_event_target.webhooks',
      'aws_lambda_permission.webhooks',
    ]) {
      expect(await evaluate(infra, count(name)), name).toBe(0);
      expect(await evaluate(infra, count(name), { enable_webhooks: true }), name).toBe(1);
    }
    const precondition = body(
      body(resource(infra, 'aws_cloudwatch_event_rule.webhooks').lifecycle, 'lifecycle').precondition,
      'precondition',
    );
    expect(precondition.condition).toBe('${var.enable_nat_gateway}');
  });

  it('invoke the worker function with the dispatch event, on their schedule, allowed for that rule only', async () => {
    const rule = resource(infra, 'aws_cloudwatch_event_rule.webhooks');
    expect(rule.schedule_expression).toBe('${var.webhook_dispatch_schedule}');
    expect(infra.variables.get('webhook_dispatch_schedule')?.default).toBe('rate(1 minute)');
    const target = resource(infra, 'aws_cloudwatch_event_target.webhooks');
    expect(target.arn).toBe('${aws_lambda_function.worker.arn}');
    // src/worker/lambda.ts tells this event from the reconciler's schedule by exactly this input.
    expect(target.input).toBe('${jsonencode({ payonce = "dispatch-webhooks" })}');
    const permission = resource(infra, 'aws_lambda_permission.webhooks');
    expect(permission).toMatchObject({
      action: 'lambda:InvokeFunction',
      function_name: '${aws_lambda_function.worker.function_name}',
      principal: 'events.amazonaws.com',
      source_arn: '${aws_cloudwatch_event_rule.webhooks[0].arn}',
    });
  });

  it('let the functions out to the internet on 443 only, through the NAT gateway', async () => {
    const egress = resource(infra, 'aws_vpc_security_group_egress_rule.lambda_to_internet');
    expect(egress).toMatchObject({ ip_protocol: 'tcp', from_port: 443, to_port: 443, cidr_ipv4: '0.0.0.0/0' });
    expect(await evaluate(infra, expressionOf(egress.count))).toBe(0);
    expect(await evaluate(infra, expressionOf(egress.count), { enable_nat_gateway: true })).toBe(1);
  });
});
