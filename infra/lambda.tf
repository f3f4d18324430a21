# The three functions come from the zips that `npm run build:lambda` writes to dist/lambda/.
# Each logs to a log group created here first, so retention applies from the first line.
#
# Log format JSON, for all three: payonce's own lines are JSON already (pino), and Lambda keeps
# them as they are; JSON turns Lambda's own lines (START, END, REPORT, init errors) into JSON
# objects too, so each log group holds one format that Logs Insights can query by field. No
# application_log_level: Lambda does not know pino's numeric "level" and counts every line as
# INFO, so a WARN filter would drop payonce's errors. LOG_LEVEL filters instead.

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/lambda/${local.function_names.api}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/aws/lambda/${local.function_names.worker}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "migrate" {
  name              = "/aws/lambda/${local.function_names.migrate}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "api" {
  function_name    = local.function_names.api
  description      = "payonce HTTP API (Fastify behind API Gateway)"
  role             = aws_iam_role.api.arn
  filename         = local.artifact_paths.api
  source_code_hash = filebase64sha256(local.artifact_paths.api)
  handler          = "index.handler"
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  memory_size      = var.api_memory_mb
  timeout          = var.api_timeout_seconds

  reserved_concurrent_executions = var.api_reserved_concurrency

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.lambda.id]
  }

  environment {
    variables = local.app_environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.api.name
  }

  # Lambda checks at creation that the role may create network interfaces.
  depends_on = [aws_iam_role_policy.api]
}

resource "aws_lambda_function" "worker" {
  function_name    = local.function_names.worker
  description      = "payonce worker: charges purchases from the SQS FIFO queue"
  role             = aws_iam_role.worker.arn
  filename         = local.artifact_paths.worker
  source_code_hash = filebase64sha256(local.artifact_paths.worker)
  handler          = "index.handler"
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  memory_size      = var.worker_memory_mb
  timeout          = var.worker_timeout_seconds

  reserved_concurrent_executions = var.worker_reserved_concurrency

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.lambda.id]
  }

  environment {
    variables = local.worker_environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.worker.name
  }

  depends_on = [aws_iam_role_policy.worker]

  lifecycle {
    precondition {
      condition     = var.worker_reserved_concurrency == null || try(var.worker_reserved_concurrency >= var.worker_max_concurrency, false)
      error_message = "worker_reserved_concurrency must be at least worker_max_concurrency, or SQS batches are throttled and may end in the dead-letter queue."
    }
  }
}

resource "aws_lambda_function" "migrate" {
  function_name    = local.function_names.migrate
  description      = "payonce schema migrations: invoke once after each deploy"
  role             = aws_iam_role.migrate.arn
  filename         = local.artifact_paths.migrate
  source_code_hash = filebase64sha256(local.artifact_paths.migrate)
  handler          = "index.handler"
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  memory_size      = 512
  timeout          = var.migrate_timeout_seconds

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.lambda.id]
  }

  environment {
    variables = local.migrate_environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.migrate.name
  }

  # Its secret must have a value before it runs, also when only it is applied
  # (`terraform apply -target=aws_lambda_function.migrate`, infra/README.md's "Updating").
  depends_on = [aws_iam_role_policy.migrate, aws_secretsmanager_secret_version.migrate]
}
