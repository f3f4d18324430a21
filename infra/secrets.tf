# One secret holds what the functions must not see in their environment: a JSON object of
# environment variables that the code fetches at cold start and merges into its configuration.
resource "aws_secretsmanager_secret" "app" {
  name                    = "${local.name}/app"
  description             = "payonce: DATABASE_URL and REDIS_URL (JSON object of environment variables)"
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id

  secret_string = jsonencode({
    DATABASE_URL = "postgres://${local.db_username}:${urlencode(random_password.db.result)}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${local.db_name}?sslmode=${var.database_ssl_mode}"
    REDIS_URL    = "rediss://:${urlencode(random_password.redis.result)}@${local.redis_endpoint}:${aws_elasticache_replication_group.main.port}"
  })
}
