# A message in the dead-letter queue is a purchase the worker gave up on after
# queue_max_receive_count receives: someone has to look at it, and redrive it once fixed.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${local.name}-purchases-dlq-not-empty"
  alarm_description   = "Purchases reached the dead-letter queue ${aws_sqs_queue.purchases_dlq.name}: inspect them, fix the cause, then redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_sns_topic_arns
  ok_actions          = var.alarm_sns_topic_arns

  dimensions = {
    QueueName = aws_sqs_queue.purchases_dlq.name
  }
}
