# The reconciler (src/worker/reconciler.ts) on a schedule. A Lambda worker has no long-running
# process to run it on an interval, so EventBridge invokes the worker function with a scheduled
# event, which it answers by reconciling instead of handling a batch: accepted purchases with no
# payment whose message is gone are sent again (after the queue's whole retry schedule).
resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${local.name}-reconcile"
  description         = "Runs payonce's reconciler in the worker function."
  schedule_expression = var.reconcile_schedule
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule = aws_cloudwatch_event_rule.reconcile.name
  arn  = aws_lambda_function.worker.arn
}

resource "aws_lambda_permission" "reconcile" {
  statement_id  = "AllowReconcileSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.worker.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconcile.arn
}
