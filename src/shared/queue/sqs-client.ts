import { SQSClient } from '@aws-sdk/client-sqs';

export interface SqsClientOptions {
  /**
   * Upper bound on one HTTP request. Must exceed the long-poll wait of a receiving client.
   * Default 30 s.
   */
  requestTimeoutMs?: number;
}

/**
 * An SQS client configured the AWS SDK's standard way: region, credentials and endpoint come
 * from the environment (`AWS_REGION`, the credential chain, `AWS_ENDPOINT_URL_SQS` for a local
 * SQS). Whoever creates it calls `destroy()`.
 */
export function createSqsClient(options: SqsClientOptions = {}): SQSClient {
  return new SQSClient({
    // Send to the endpoint the SDK resolved (AWS_ENDPOINT_URL_SQS when set, else the regional
    // endpoint of AWS_REGION), not to the host inside the queue URL: a local SQS hands out URLs
    // whose host need not resolve, and on AWS both are the same regional endpoint.
    useQueueUrlAsEndpoint: false,
    requestHandler: {
      // An unreachable endpoint fails in seconds instead of holding an enqueue or a poll.
      connectionTimeout: 3_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
    },
  });
}
