# RDS rejects "/", "'", "\"", "@" and spaces in a master password. The password also ends up in
# DATABASE_URL, so only URL-unreserved punctuation is allowed.
resource "random_password" "db" {
  length           = 40
  special          = true
  override_special = "-_.~"
  min_lower        = 2
  min_upper        = 2
  min_numeric      = 2
}

# The application role's password, in the API's and the worker's DATABASE_URL. RDS never sees it
# (the migration function sets it on the role), so letters and digits only: nothing to escape.
resource "random_password" "db_app" {
  length  = 40
  special = false
}

resource "aws_db_subnet_group" "main" {
  name        = "${local.name}-postgres"
  description = "payonce Postgres: private subnets"
  subnet_ids  = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "main" {
  name        = "${local.name}-${local.db_family}"
  family      = local.db_family
  description = "payonce Postgres: TLS only"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "main" {
  identifier     = "${local.name}-postgres"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = local.db_name
  username = local.db_username
  password = random_password.db.result
  port     = 5432

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.database.id]
  parameter_group_name   = aws_db_parameter_group.main.name
  publicly_accessible    = false
  multi_az               = var.db_multi_az

  backup_retention_period    = var.db_backup_retention_days
  copy_tags_to_snapshot      = true
  auto_minor_version_upgrade = true
  deletion_protection        = var.deletion_protection
  skip_final_snapshot        = var.db_skip_final_snapshot
  final_snapshot_identifier  = "${local.name}-postgres-final"

  lifecycle {
    precondition {
      condition     = var.db_max_allocated_storage_gb == 0 || var.db_max_allocated_storage_gb > var.db_allocated_storage_gb
      error_message = "db_max_allocated_storage_gb must be 0 (no autoscaling) or larger than db_allocated_storage_gb."
    }
  }
}
