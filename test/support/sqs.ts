import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { randomSuffix } from './services.js';

/** The region every test SQS client and process uses. */
export const TEST_AWS_REGION = 'us-east-1';

/** Credentials that fauxqs accepts (it never checks them); real ones are never needed. */
const TEST_AWS_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

export interface TestFifoQueue {
  name: string;
  url: string;
  arn: string;
  deadLetterUrl: string;
}

export interface TestSqs {
  /** The emulator's endpoint, e.g. http://127.0.0.1:41234. */
  endpoint: string;
  /** A client for the test itself. */
  client: SQSClient;
  /**
   * Creates a FIFO queue like infra/queue.tf's (explicit deduplication ids, queue-wide
   * deduplication) with a FIFO dead-letter queue after `maxReceiveCount` receives.
   */
  createFifoQueue(options?: { maxReceiveCount?: number; visibilityTimeoutSeconds?: number }): Promise<TestFifoQueue>;
  /** The environment that points a process's AWS SDK (and payonce) at this emulator and queue. */
  processEnv(queue: TestFifoQueue): Record<string, string>;
  /** Visible, in-flight and delayed message counts of a queue. */
  counts(queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
  /** Receives up to 10 messages with their system attributes (hides them for `visibilitySeconds`). */
  receive(queueUrl: string, options?: { visibilitySeconds?: number; waitSeconds?: number }): Promise<Message[]>;
  /** Deletes the queues this helper created and stops the emulator. */
  stop(): Promise<void>;
}

/** An SQS emulator (fauxqs) in this process on a free port, for one test file. */
export async function startTestSqs(): Promise<TestSqs> {
  const server = await startFauxqs({ port: 0, logger: false, defaultRegion: TEST_AWS_REGION });
  const endpoint = server.address;
  const client = new SQSClient({ endpoint, region: TEST_AWS_REGION, credentials: TEST_AWS_CREDENTIALS });
  const created: string[] = [];

  async function attribute(queueUrl: string, name: 'QueueArn'): Promise<string> {
    const { Attributes } = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: [name] }),
    );
    return Attributes![name]!;
  }

  return {
    endpoint,
    client,

    async createFifoQueue({ maxReceiveCount = 5, visibilityTimeoutSeconds = 30 } = {}) {
      const name = `purchases-${randomSuffix()}`;
      const dlq = await client.send(
        new CreateQueueCommand({ QueueName: `${name}-dlq.fifo`, Attributes: { FifoQueue: 'true' } }),
      );
      created.push(dlq.QueueUrl!);
      const queue = await client.send(
        new CreateQueueCommand({
          QueueName: `${name}.fifo`,
          Attributes: {
            FifoQueue: 'true',
            ContentBasedDeduplication: 'false',
            DeduplicationScope: 'queue',
            FifoThroughputLimit: 'perQueue',
            VisibilityTimeout: String(visibilityTimeoutSeconds),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: await attribute(dlq.QueueUrl!, 'QueueArn'),
              maxReceiveCount,
            }),
          },
        }),
      );
      created.push(queue.QueueUrl!);
      return {
        name: `${name}.fifo`,
        url: queue.QueueUrl!,
        arn: await attribute(queue.QueueUrl!, 'QueueArn'),
        deadLetterUrl: dlq.QueueUrl!,
      };
    },

    processEnv(queue) {
      return {
        QUEUE_DRIVER: 'sqs',
        SQS_QUEUE_URL: queue.url,
        AWS_ENDPOINT_URL_SQS: endpoint,
        AWS_REGION: TEST_AWS_REGION,
        AWS_ACCESS_KEY_ID: TEST_AWS_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_AWS_CREDENTIALS.secretAccessKey,
      };
    },

    async counts(queueUrl) {
      const { Attributes = {} } = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'ApproximateNumberOfMessagesDelayed',
          ],
        }),
      );
      return {
        visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
        delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
      };
    },

    async receive(queueUrl, { visibilitySeconds = 30, waitSeconds = 0 } = {}) {
      const { Messages = [] } = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: visibilitySeconds,
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      return Messages;
    },

    async stop() {
      for (const url of created) await client.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {});
      client.destroy();
      await server.stop();
    },
  };
}
