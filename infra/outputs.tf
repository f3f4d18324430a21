output "api_url" {
  description = "Base URL of the HTTP API without a trailing slash, e.g. <api_url>/health/ready."
  value       = trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")
}

output "queue_url" {
  description = "URL of the purchases FIFO queue (SQS_QUEUE_URL)."
  value       = aws_sqs_queue.purchases.url
}

output "dlq_url" {
  description = "URL of the purchases dead-letter queue."
  value       = aws_sqs_queue.purchases_dlq.url
}

output "api_function_name" {
  description = "Name of the API function."
  value       = aws_lambda_function.api.function_name
}

output "worker_function_name" {
  description = "Name of the worker function."
  value       = aws_lambda_function.worker.function_name
}

output "migrate_function_name" {
  description = "Name of the migration function."
  value       = aws_lambda_function.migrate.function_name
}

output "migrate_command" {
  description = "Runs the migrations once; check that the response has no FunctionError and read migrate-result.json."
  value       = "aws lambda invoke --region ${var.region} --function-name ${aws_lambda_function.migrate.function_name} --cli-read-timeout ${var.migrate_timeout_seconds + 30} migrate-result.json"
}

output "app_secret_arn" {
  description = "ARN of the API's and the worker's Secrets Manager secret (APP_SECRET_ARN): DATABASE_URL of the application role, REDIS_URL and ADMIN_TOKEN."
  value       = aws_secretsmanager_secret.app.arn
}

output "database_endpoint" {
  description = "Host of the RDS Postgres instance (reachable only from inside the VPC)."
  value       = aws_db_instance.main.address
}

output "redis_endpoint" {
  description = "Primary endpoint of the ElastiCache replication group, or its configuration endpoint in cluster mode (reachable only from inside the VPC)."
  value       = local.redis_endpoint
}
