# The webhook dispatcher (src/worker/webhooks/) on a schedule. A Lambda worker has no
# long-running process to run it on an interval, so EventBridge invokes the worker function with
# a constant event, {"payonce": "dispatch-webhooks"}, which it answers by sending the deliveries
# that are due until none are left or the invocation's time runs short. Deliveries go to the
# account's endpoints on the internet, so webhooks need the NAT gateway; the functions' security
# group lets them out on 443 only (endpoints on AWS must be https:// on the default port).
resource "aws_cloudwatch_event_rule" "webhooks" {
  count = var.enable_webhooks ? 1 : 0

  name                = "${local.name}-webhooks"
  description         = "Sends payonce's due webhook deliveries from the worker function."
  schedule_expression = var.webhook_dispatch_schedule

  lifecycle {
    precondition {
      condition     = var.enable_nat_gateway
      error_message = "enable_webhooks needs enable_nat_gateway: the functions reach webhook endpoints through the NAT gateway."
    }
  }
}

resource "aws_cloudwatch_event_target" "webhooks" {
  count = var.enable_webhooks ? 1 : 0

  rule  = aws_cloudwatch_event_rule.webhooks[0].name
  arn   = aws_lambda_function.worker.arn
  input = jsonencode({ payonce = "dispatch-webhooks" })
}

resource "aws_lambda_permission" "webhooks" {
  count = var.enable_webhooks ? 1 : 0

  statement_id  = "AllowWebhookDispatchSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.worker.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.webhooks[0].arn
}
