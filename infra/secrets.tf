# Two secrets hold what the functions must not see in their environment, each a JSON object of
# environment variables that the code fetches at cold start (APP_SECRET_ARN) and merges into its
# configuration. Each function's role may read its own secret only (iam.tf).

# The bearer token of the API's operator routes (GET /metrics). Letters and digits only: it goes in
# an Authorization header and in shell commands as it is.
resource "random_password" "admin_token" {
  length  = 48
  special = false
}

# app: the API and the worker. Their database user is the application role, with rights on
# payonce's tables only; the migration function creates it (src/migrate/app-role.ts).
resource "aws_secretsmanager_secret" "app" {
  name                    = "${local.name}/app"
  description             = "payonce API and worker: DATABASE_URL (application role), REDIS_URL and ADMIN_TOKEN (JSON object of environment variables)"
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id

  secret_string = jsonencode({
    DATABASE_URL = "postgres://${local.db_app_username}:${urlencode(random_password.db_app.result)}@${local.database_location}"
    REDIS_URL    = "rediss://:${urlencode(random_password.redis.result)}@${local.redis_endpoint}:${aws_elasticache_replication_group.main.port}"
    ADMIN_TOKEN  = random_password.admin_token.result
  })
}

# migrate: the migration function only. The master user's DATABASE_URL (it owns the tables and
# may create roles), and the application role it creates or updates on every run.
resource "aws_secretsmanager_secret" "migrate" {
  name                    = "${local.name}/migrate"
  description             = "payonce migrations: the RDS master user's DATABASE_URL, and APP_DATABASE_ROLE and APP_DATABASE_PASSWORD (JSON object of environment variables)"
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "migrate" {
  secret_id = aws_secretsmanager_secret.migrate.id

  secret_string = jsonencode({
    DATABASE_URL          = "postgres://${local.db_username}:${urlencode(random_password.db.result)}@${local.database_location}"
    APP_DATABASE_ROLE     = local.db_app_username
    APP_DATABASE_PASSWORD = random_password.db_app.result
  })
}
