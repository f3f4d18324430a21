locals {
  name = "${var.name_prefix}-${var.environment}"

  function_names = {
    api     = "${local.name}-api"
    worker  = "${local.name}-worker"
    migrate = "${local.name}-migrate"
  }

  artifact_paths = {
    api     = coalesce(var.api_artifact_path, "${path.module}/../dist/lambda/api.zip")
    worker  = coalesce(var.worker_artifact_path, "${path.module}/../dist/lambda/worker.zip")
    migrate = coalesce(var.migrate_artifact_path, "${path.module}/../dist/lambda/migrate.zip")
  }

  # AWS asks for a visibility timeout of at least six times the function timeout on a queue that
  # feeds Lambda: a batch whose invocation is throttled and retried must not become visible (and
  # be handed to a second invocation) while the first one may still be running.
  min_queue_visibility_timeout_seconds = 6 * var.worker_timeout_seconds
  queue_visibility_timeout_seconds     = coalesce(var.queue_visibility_timeout_seconds, local.min_queue_visibility_timeout_seconds)

  # 14 days, the most SQS keeps a message: time to inspect and redrive what the worker gave up on.
  dlq_message_retention_seconds = 1209600

  db_name = "payonce"
  # The RDS master user: only the migration function connects as it (the migrate secret).
  db_username = "payonce"
  # The API and the worker connect as this application role, with rights on payonce's tables only;
  # the migration function creates it and sets its password and grants on every run.
  db_app_username = "payonce_app"
  db_family       = "postgres${split(".", var.db_engine_version)[0]}"
  # Host, port, database and TLS mode of both DATABASE_URLs (secrets.tf); the user goes in front.
  database_location = "${aws_db_instance.main.address}:${aws_db_instance.main.port}/${local.db_name}?sslmode=${var.database_ssl_mode}"

  redis_family = "redis${split(".", var.redis_engine_version)[0]}"
  # What REDIS_URL names: in cluster mode the configuration endpoint, from which the client
  # learns every shard; otherwise the primary endpoint.
  redis_endpoint = var.redis_cluster_mode ? aws_elasticache_replication_group.main.configuration_endpoint_address : aws_elasticache_replication_group.main.primary_endpoint_address

  # Environment of all three functions. No credential is here: each function reads its own from
  # the secret named by APP_SECRET_ARN at cold start (secrets.tf).
  base_environment = merge(
    {
      NODE_ENV          = "production"
      NODE_OPTIONS      = "--enable-source-maps"
      LOG_LEVEL         = var.log_level
      DATABASE_POOL_MAX = tostring(var.database_pool_max)
    },
    # Since Node.js 20 the Lambda runtime no longer trusts Amazon's own CAs (RDS among them) by
    # default; this bundle ships with the runtime and lets sslmode=verify-full check the RDS
    # certificate. Loading it costs cold-start time, so only when it is needed.
    var.database_ssl_mode == "verify-full" ? tomap({ NODE_EXTRA_CA_CERTS = "/var/runtime/ca-cert.pem" }) : tomap({}),
  )

  # The API and the worker: the queue, Redis, and the app secret (the application role's
  # DATABASE_URL, REDIS_URL, ADMIN_TOKEN).
  app_environment = merge(local.base_environment, {
    QUEUE_DRIVER            = "sqs"
    SQS_QUEUE_URL           = aws_sqs_queue.purchases.url
    APP_SECRET_ARN          = aws_secretsmanager_secret.app.arn
    REDIS_KEY_PREFIX        = var.redis_key_prefix
    REDIS_CLUSTER           = tostring(var.redis_cluster_mode)
    IDEMPOTENCY_TTL_SECONDS = tostring(var.idempotency_ttl_seconds)
  })

  # The migration function uses neither the queue nor Redis, only Postgres as the master user:
  # its secret holds that DATABASE_URL and the application role to create (no Redis auth token).
  migrate_environment = merge(local.base_environment, {
    APP_SECRET_ARN = aws_secretsmanager_secret.migrate.arn
  })

  worker_environment = merge(local.app_environment, {
    PAYMENT_DELAY_MS     = tostring(var.payment_delay_ms)
    PAYMENT_DECLINE_RATE = tostring(var.payment_decline_rate)
    # The last receive before SQS dead-letters a message is the worker's last attempt.
    JOB_ATTEMPTS = tostring(var.queue_max_receive_count)
    # The reconciler waits out every receive's visibility timeout before it sends a purchase again.
    SQS_VISIBILITY_TIMEOUT_SECONDS = tostring(local.queue_visibility_timeout_seconds)
  })
}

data "aws_availability_zones" "available" {
  state = "available"

  # Local and Wavelength zones lack RDS and ElastiCache.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= var.az_count
      error_message = "The region has fewer than az_count (${var.az_count}) availability zones."
    }
  }
}
