# The three functions come from the zips that `npm run build:lambda` writes to dist/lambda/.
# Each logs to a log group created here first, so retention applies from the first line.

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
    variables = local.common_environment
  }

  logging_config {
    log_format = "Text"
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
    log_format = "Text"
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
    variables = local.common_environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.migrate.name
  }

  depends_on = [aws_iam_role_policy.migrate]
}
