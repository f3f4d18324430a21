resource "aws_sqs_queue" "purchases_dlq" {
  name                        = "${local.name}-purchases-dlq.fifo"
  fifo_queue                  = true
  content_based_deduplication = false
  message_retention_seconds   = local.dlq_message_retention_seconds
  sqs_managed_sse_enabled     = true
}

# The API sends with MessageDeduplicationId = idempotency key and one MessageGroupId per purchase.
# Deduplication therefore has to span the whole queue: a client's retry after a lost reply may
# carry a new purchase id, hence a new group, and must still collapse into the first message.
# That rules out high-throughput FIFO (per-group deduplication): a FIFO queue in this mode takes
# about 300 sends per second (3,000 with batching).
resource "aws_sqs_queue" "purchases" {
  name                        = "${local.name}-purchases.fifo"
  fifo_queue                  = true
  content_based_deduplication = false
  deduplication_scope         = "queue"
  fifo_throughput_limit       = "perQueue"
  visibility_timeout_seconds  = local.queue_visibility_timeout_seconds
  message_retention_seconds   = var.queue_message_retention_seconds
  receive_wait_time_seconds   = 20
  sqs_managed_sse_enabled     = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.purchases_dlq.arn
    maxReceiveCount     = var.queue_max_receive_count
  })

  lifecycle {
    precondition {
      condition     = local.queue_visibility_timeout_seconds >= 6 * var.worker_timeout_seconds
      error_message = "The purchases queue's visibility timeout (${local.queue_visibility_timeout_seconds} s) must be at least six times worker_timeout_seconds (${6 * var.worker_timeout_seconds} s)."
    }
  }
}

# Only the purchases queue may use the dead-letter queue. A separate resource, because the
# purchases queue already refers to the dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "purchases_dlq" {
  queue_url = aws_sqs_queue.purchases_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.purchases.arn]
  })
}

resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn        = aws_sqs_queue.purchases.arn
  function_name           = aws_lambda_function.worker.arn
  batch_size              = var.worker_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.worker_max_concurrency
  }

  # The mapping polls with the worker's role: its SQS permissions must exist first.
  depends_on = [aws_iam_role_policy.worker]
}

# Advisory only (a warning at plan time): a batch is handled one purchase after another, so a
# full batch of simulated payments should fit in the worker's timeout with room to spare.
check "worker_timeout_fits_a_batch" {
  assert {
    condition     = var.worker_batch_size * var.payment_delay_ms < var.worker_timeout_seconds * 1000 / 2
    error_message = "worker_batch_size x payment_delay_ms (${var.worker_batch_size * var.payment_delay_ms} ms) is more than half of worker_timeout_seconds: full batches may time out and be retried."
  }
}
