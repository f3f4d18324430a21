# ElastiCache accepts 16-128 characters whose only punctuation is one of ! & # $ ^ < > -. The
# token also ends up in REDIS_URL, where "-" is the only one of those that needs no escaping.
resource "random_password" "redis" {
  length           = 64
  special          = true
  override_special = "-"
  min_lower        = 2
  min_upper        = 2
  min_numeric      = 2
}

resource "aws_elasticache_subnet_group" "main" {
  name        = "${local.name}-redis"
  description = "payonce Redis: private subnets"
  subnet_ids  = aws_subnet.private[*].id
}

# BullMQ and the idempotency claims need Redis to refuse writes rather than evict keys when it
# is full. appendonly is not here on purpose: ElastiCache does not offer AOF on Redis 2.8.22 and
# later (the redis7 family has no such parameter). Durability rests on a replica in another
# zone with automatic failover instead; infra/README.md explains what that changes.
#
# In cluster mode the group also turns cluster-enabled on; its name changes with the mode, so
# switching modes creates a new group before the old one goes (create_before_destroy).
resource "aws_elasticache_parameter_group" "main" {
  name        = "${local.name}-${local.redis_family}${var.redis_cluster_mode ? "-cluster" : ""}"
  family      = local.redis_family
  description = "payonce Redis: noeviction${var.redis_cluster_mode ? ", cluster mode" : ""}"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  dynamic "parameter" {
    for_each = var.redis_cluster_mode ? [1] : []
    content {
      name  = "cluster-enabled"
      value = "yes"
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id = "${local.name}-redis"
  description          = "payonce idempotency claims and in-flight purchases"

  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.main.name

  # Cluster mode (redis_cluster_mode): redis_num_node_groups shards of a primary and
  # redis_replica_count replicas each; payonce then runs with REDIS_CLUSTER=true and reaches it
  # through the configuration endpoint. Otherwise one primary and its replicas.
  cluster_mode               = var.redis_cluster_mode ? "enabled" : "disabled"
  num_cache_clusters         = var.redis_cluster_mode ? null : var.redis_replica_count + 1
  num_node_groups            = var.redis_cluster_mode ? var.redis_num_node_groups : null
  replicas_per_node_group    = var.redis_cluster_mode ? var.redis_replica_count : null
  automatic_failover_enabled = var.redis_cluster_mode || var.redis_multi_az
  multi_az_enabled           = var.redis_multi_az

  subnet_group_name  = aws_elasticache_subnet_group.main.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  auto_minor_version_upgrade = true

  lifecycle {
    precondition {
      condition     = !var.redis_multi_az || var.redis_replica_count >= 1
      error_message = "redis_multi_az needs redis_replica_count >= 1 (a replica to fail over to)."
    }
  }
}
