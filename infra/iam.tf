# One role per function, each allowed only what its function does. The ENI actions are what
# AWSLambdaVPCAccessExecutionRole grants; EC2 does not scope them to resources, hence "*".

data "aws_iam_policy_document" "lambda_assume_role" {
  statement {
    sid     = "LambdaAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "api" {
  name               = local.function_names.api
  description        = "payonce API function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role" "worker" {
  name               = local.function_names.worker
  description        = "payonce worker function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role" "migrate" {
  name               = local.function_names.migrate
  description        = "payonce migration function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

# What every function needs: network interfaces in the VPC.
data "aws_iam_policy_document" "lambda_common" {
  statement {
    sid    = "VpcNetworkInterfaces"
    effect = "Allow"
    actions = [
      "ec2:AssignPrivateIpAddresses",
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }
}

# The API and the worker read the app secret; only the migration function reads the migrate one.
data "aws_iam_policy_document" "lambda_app" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_common.json]

  statement {
    sid       = "AppSecret"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.app.arn]
  }
}

data "aws_iam_policy_document" "api" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_app.json]

  statement {
    sid       = "OwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.api.arn}:*"]
  }

  statement {
    sid       = "EnqueuePurchases"
    effect    = "Allow"
    actions   = ["sqs:GetQueueAttributes", "sqs:SendMessage"]
    resources = [aws_sqs_queue.purchases.arn]
  }
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_app.json]

  statement {
    sid       = "OwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:*"]
  }

  # What the SQS event source mapping does with the worker's role.
  statement {
    sid    = "ConsumePurchases"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.purchases.arn]
  }
}

data "aws_iam_policy_document" "migrate" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_common.json]

  statement {
    sid       = "OwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.migrate.arn}:*"]
  }

  statement {
    sid       = "MigrateSecret"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.migrate.arn]
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "${local.function_names.api}-access"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "${local.function_names.worker}-access"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_role_policy" "migrate" {
  name   = "${local.function_names.migrate}-access"
  role   = aws_iam_role.migrate.id
  policy = data.aws_iam_policy_document.migrate.json
}
