# ---------------------------------------------------------------------------------------------
# Naming and placement
# ---------------------------------------------------------------------------------------------

variable "region" {
  description = "AWS region to deploy to, e.g. eu-west-1. No default: choose it on purpose."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1 or us-east-2."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; combined with environment as <name_prefix>-<environment>."
  type        = string
  default     = "payonce"

  validation {
    # ElastiCache replication group ids (<prefix>-<env>-redis) are at most 40 characters and,
    # like RDS identifiers, may not contain two consecutive hyphens.
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 2-20 characters of lowercase letters, digits and single hyphens, start with a letter and not end with a hyphen."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...), part of every resource name and the Environment tag."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.environment))
    error_message = "environment must be 1-10 lowercase letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource (merged over Project, Environment and ManagedBy)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC; subnets are carved from it in /(prefix+4) pieces."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && can(regex("/(1[6-9]|2[0-4])$", var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block with a prefix length between /16 and /24."
  }
}

variable "az_count" {
  description = "Number of availability zones (one private subnet each) for Lambda, RDS and ElastiCache."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3 && floor(var.az_count) == var.az_count
    error_message = "az_count must be 2 or 3 (RDS subnet groups and Multi-AZ need at least two zones)."
  }
}

variable "enable_nat_gateway" {
  description = "Create a public subnet, an internet gateway and one NAT gateway so the functions can reach the internet (a real payment provider). Off by default: SQS and Secrets Manager are reached through VPC endpoints."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Lambda functions
# ---------------------------------------------------------------------------------------------

variable "lambda_runtime" {
  description = "Lambda runtime of every function."
  type        = string
  default     = "nodejs22.x"

  validation {
    condition     = contains(["nodejs22.x", "nodejs24.x"], var.lambda_runtime)
    error_message = "lambda_runtime must be nodejs22.x or nodejs24.x."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of every function; the build must target the same one if it ships native modules."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "api_artifact_path" {
  description = "Zip of the API function (npm run build:lambda). Null means <module>/../dist/lambda/api.zip."
  type        = string
  default     = null

  validation {
    condition     = var.api_artifact_path == null || can(regex("\\.zip$", var.api_artifact_path))
    error_message = "api_artifact_path must name a .zip file."
  }
}

variable "worker_artifact_path" {
  description = "Zip of the worker function (npm run build:lambda). Null means <module>/../dist/lambda/worker.zip."
  type        = string
  default     = null

  validation {
    condition     = var.worker_artifact_path == null || can(regex("\\.zip$", var.worker_artifact_path))
    error_message = "worker_artifact_path must name a .zip file."
  }
}

variable "migrate_artifact_path" {
  description = "Zip of the migration function (npm run build:lambda). Null means <module>/../dist/lambda/migrate.zip."
  type        = string
  default     = null

  validation {
    condition     = var.migrate_artifact_path == null || can(regex("\\.zip$", var.migrate_artifact_path))
    error_message = "migrate_artifact_path must name a .zip file."
  }
}

variable "api_timeout_seconds" {
  description = "Timeout of the API function. API Gateway HTTP APIs end an integration after 30 seconds whatever this says."
  type        = number
  default     = 30

  validation {
    condition     = var.api_timeout_seconds >= 1 && var.api_timeout_seconds <= 30 && floor(var.api_timeout_seconds) == var.api_timeout_seconds
    error_message = "api_timeout_seconds must be a whole number from 1 to 30."
  }
}

variable "api_memory_mb" {
  description = "Memory of the API function in MB (CPU grows with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.api_memory_mb >= 128 && var.api_memory_mb <= 10240 && floor(var.api_memory_mb) == var.api_memory_mb
    error_message = "api_memory_mb must be a whole number from 128 to 10240."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the API function, which also caps it; null leaves it unreserved and uncapped."
  type        = number
  default     = null

  validation {
    condition     = var.api_reserved_concurrency == null || try(var.api_reserved_concurrency >= 1 && floor(var.api_reserved_concurrency) == var.api_reserved_concurrency, false)
    error_message = "api_reserved_concurrency must be null or a whole number of at least 1."
  }
}

variable "worker_timeout_seconds" {
  description = "Timeout of the worker function: one invocation handles a whole SQS batch, one purchase after another. The queue's visibility timeout is at least six times this."
  type        = number
  default     = 60

  validation {
    condition     = var.worker_timeout_seconds >= 1 && var.worker_timeout_seconds <= 900 && floor(var.worker_timeout_seconds) == var.worker_timeout_seconds
    error_message = "worker_timeout_seconds must be a whole number from 1 to 900."
  }
}

variable "worker_memory_mb" {
  description = "Memory of the worker function in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.worker_memory_mb >= 128 && var.worker_memory_mb <= 10240 && floor(var.worker_memory_mb) == var.worker_memory_mb
    error_message = "worker_memory_mb must be a whole number from 128 to 10240."
  }
}

variable "worker_reserved_concurrency" {
  description = "Reserved concurrency of the worker function; null leaves it unreserved. When set it must be at least worker_max_concurrency, or the event source mapping is throttled."
  type        = number
  default     = null

  validation {
    condition     = var.worker_reserved_concurrency == null || try(var.worker_reserved_concurrency >= 2 && floor(var.worker_reserved_concurrency) == var.worker_reserved_concurrency, false)
    error_message = "worker_reserved_concurrency must be null or a whole number of at least 2."
  }
}

variable "worker_batch_size" {
  description = "SQS messages per worker invocation (FIFO queues allow at most 10)."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_batch_size >= 1 && var.worker_batch_size <= 10 && floor(var.worker_batch_size) == var.worker_batch_size
    error_message = "worker_batch_size must be a whole number from 1 to 10."
  }
}

variable "worker_max_concurrency" {
  description = "The operator's scaling knob: the most worker invocations the SQS event source mapping runs at once (each handles one batch)."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_max_concurrency >= 2 && var.worker_max_concurrency <= 1000 && floor(var.worker_max_concurrency) == var.worker_max_concurrency
    error_message = "worker_max_concurrency must be a whole number from 2 to 1000 (the limits of the event source mapping's scaling_config)."
  }
}

variable "migrate_timeout_seconds" {
  description = "Timeout of the migration function, invoked once after each deploy."
  type        = number
  default     = 300

  validation {
    condition     = var.migrate_timeout_seconds >= 30 && var.migrate_timeout_seconds <= 900 && floor(var.migrate_timeout_seconds) == var.migrate_timeout_seconds
    error_message = "migrate_timeout_seconds must be a whole number from 30 to 900."
  }
}

# ---------------------------------------------------------------------------------------------
# Application settings (environment of the functions)
# ---------------------------------------------------------------------------------------------

variable "log_level" {
  description = "LOG_LEVEL of every function (pino level)."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["fatal", "error", "warn", "info", "debug", "trace", "silent"], var.log_level)
    error_message = "log_level must be one of fatal, error, warn, info, debug, trace, silent."
  }
}

variable "redis_key_prefix" {
  description = "REDIS_KEY_PREFIX: prefix of every Redis key payonce writes."
  type        = string
  default     = "payonce"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,64}$", var.redis_key_prefix))
    error_message = "redis_key_prefix must be 1-64 letters, digits, \"_\", \"-\" or \".\" (no \":\")."
  }
}

variable "idempotency_ttl_seconds" {
  description = "IDEMPOTENCY_TTL_SECONDS: how long an accepted purchase's key blocks duplicates. SQS FIFO deduplication lasts a fixed 5 minutes on top of it."
  type        = number
  default     = 300

  validation {
    condition     = var.idempotency_ttl_seconds >= 1 && var.idempotency_ttl_seconds <= 2592000 && floor(var.idempotency_ttl_seconds) == var.idempotency_ttl_seconds
    error_message = "idempotency_ttl_seconds must be a whole number from 1 to 2592000 (30 days)."
  }
}

variable "payment_delay_ms" {
  description = "PAYMENT_DELAY_MS of the worker: duration of the simulated payment gateway call."
  type        = number
  default     = 2000

  validation {
    condition     = var.payment_delay_ms >= 0 && var.payment_delay_ms <= 600000 && floor(var.payment_delay_ms) == var.payment_delay_ms
    error_message = "payment_delay_ms must be a whole number from 0 to 600000."
  }
}

variable "payment_decline_rate" {
  description = "PAYMENT_DECLINE_RATE of the worker: fraction (0..1) of payments the simulated gateway declines."
  type        = number
  default     = 0

  validation {
    condition     = var.payment_decline_rate >= 0 && var.payment_decline_rate <= 1
    error_message = "payment_decline_rate must be between 0 and 1."
  }
}

variable "database_pool_max" {
  description = "DATABASE_POOL_MAX of every function. A Lambda container serves one invocation at a time, so a small pool suffices; containers x pool must stay below the instance's max_connections."
  type        = number
  default     = 2

  validation {
    condition     = var.database_pool_max >= 1 && var.database_pool_max <= 200 && floor(var.database_pool_max) == var.database_pool_max
    error_message = "database_pool_max must be a whole number from 1 to 200."
  }
}

variable "database_ssl_mode" {
  description = "sslmode in DATABASE_URL. verify-full checks the RDS certificate against the Amazon CA bundle of the Lambda runtime (NODE_EXTRA_CA_CERTS); no-verify encrypts without checking it."
  type        = string
  default     = "verify-full"

  validation {
    condition     = contains(["verify-full", "no-verify"], var.database_ssl_mode)
    error_message = "database_ssl_mode must be verify-full or no-verify (RDS forces SSL, so disable is not an option)."
  }
}

# ---------------------------------------------------------------------------------------------
# Queue
# ---------------------------------------------------------------------------------------------

variable "queue_max_receive_count" {
  description = "Receives of a message before SQS moves it to the dead-letter queue (maxReceiveCount); also the worker's JOB_ATTEMPTS."
  type        = number
  default     = 5

  validation {
    # SQS allows up to 1000, but the worker's JOB_ATTEMPTS accepts at most 100.
    condition     = var.queue_max_receive_count >= 1 && var.queue_max_receive_count <= 100 && floor(var.queue_max_receive_count) == var.queue_max_receive_count
    error_message = "queue_max_receive_count must be a whole number from 1 to 100."
  }
}

variable "queue_message_retention_seconds" {
  description = "How long the purchases queue keeps a message (the dead-letter queue keeps them 14 days)."
  type        = number
  default     = 345600

  validation {
    condition     = var.queue_message_retention_seconds >= 60 && var.queue_message_retention_seconds <= 1209600 && floor(var.queue_message_retention_seconds) == var.queue_message_retention_seconds
    error_message = "queue_message_retention_seconds must be a whole number from 60 to 1209600 (14 days)."
  }
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the purchases queue; null means six times worker_timeout_seconds, the minimum AWS recommends for a Lambda event source (and that this configuration enforces)."
  type        = number
  default     = null

  validation {
    condition     = var.queue_visibility_timeout_seconds == null || try(var.queue_visibility_timeout_seconds >= 0 && var.queue_visibility_timeout_seconds <= 43200 && floor(var.queue_visibility_timeout_seconds) == var.queue_visibility_timeout_seconds, false)
    error_message = "queue_visibility_timeout_seconds must be null or a whole number from 0 to 43200 (12 hours)."
  }
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL (RDS)
# ---------------------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL version on RDS: a major (\"16\", RDS picks the newest minor) or major.minor. The parameter group family follows the major."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^1[6-9](\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be PostgreSQL 16 or newer, as \"16\" or \"16.4\"."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "db_instance_class must look like db.t4g.micro."
  }
}

variable "db_allocated_storage_gb" {
  description = "Initial storage of the database in GiB (gp3)."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 65536 && floor(var.db_allocated_storage_gb) == var.db_allocated_storage_gb
    error_message = "db_allocated_storage_gb must be a whole number from 20 to 65536."
  }
}

variable "db_max_allocated_storage_gb" {
  description = "Upper bound of RDS storage autoscaling in GiB; 0 disables autoscaling. Must exceed db_allocated_storage_gb when set."
  type        = number
  default     = 100

  validation {
    condition     = var.db_max_allocated_storage_gb >= 0 && var.db_max_allocated_storage_gb <= 65536 && floor(var.db_max_allocated_storage_gb) == var.db_max_allocated_storage_gb
    error_message = "db_max_allocated_storage_gb must be a whole number from 0 to 65536."
  }
}

variable "db_multi_az" {
  description = "Run RDS with a synchronous standby in a second zone (about twice the instance cost; failover in one to two minutes)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups and point-in-time recovery."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35 && floor(var.db_backup_retention_days) == var.db_backup_retention_days
    error_message = "db_backup_retention_days must be a whole number from 1 to 35 (0 would turn backups off)."
  }
}

variable "deletion_protection" {
  description = "Protect the RDS instance from deletion (terraform destroy fails until this is set to false and applied)."
  type        = bool
  default     = true
}

variable "db_skip_final_snapshot" {
  description = "Delete the database without a final snapshot when it is destroyed. Keep false in production."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Redis (ElastiCache)
# ---------------------------------------------------------------------------------------------

variable "redis_engine_version" {
  description = "ElastiCache Redis OSS version (7.x; the parameter group family is redis7)."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.redis_engine_version))
    error_message = "redis_engine_version must be a Redis 7 version such as 7.1."
  }
}

variable "redis_node_type" {
  description = "ElastiCache node type (cache.t2.* cannot encrypt in transit)."
  type        = string
  default     = "cache.t4g.micro"

  validation {
    condition     = can(regex("^cache\\.[a-z0-9]+\\.[a-z0-9]+$", var.redis_node_type)) && !startswith(var.redis_node_type, "cache.t2.") && !startswith(var.redis_node_type, "cache.t1.")
    error_message = "redis_node_type must look like cache.t4g.micro and not be a t1/t2 type."
  }
}

variable "redis_replica_count" {
  description = "Read replicas next to the primary (in cluster mode: next to each shard's primary). ElastiCache offers no AOF on Redis 7, so a replica in another zone is what keeps acknowledged writes when the primary fails."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_replica_count >= 0 && var.redis_replica_count <= 5 && floor(var.redis_replica_count) == var.redis_replica_count
    error_message = "redis_replica_count must be a whole number from 0 to 5."
  }
}

variable "redis_cluster_mode" {
  description = "Run ElastiCache in cluster mode (shards: redis_num_node_groups primaries, each with redis_replica_count replicas); the functions get REDIS_CLUSTER=true and the configuration endpoint. Switching an existing deployment changes payonce's key names: see infra/README.md."
  type        = bool
  default     = false
}

variable "redis_num_node_groups" {
  description = "Shards (node groups) in cluster mode; ignored otherwise."
  type        = number
  default     = 3

  validation {
    condition     = var.redis_num_node_groups >= 1 && var.redis_num_node_groups <= 500 && floor(var.redis_num_node_groups) == var.redis_num_node_groups
    error_message = "redis_num_node_groups must be a whole number from 1 to 500."
  }
}

variable "redis_multi_az" {
  description = "Multi-AZ with automatic failover to a replica (needs redis_replica_count >= 1)."
  type        = bool
  default     = true
}

variable "redis_snapshot_retention_days" {
  description = "Days of daily ElastiCache snapshots; 0 turns them off."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_snapshot_retention_days >= 0 && var.redis_snapshot_retention_days <= 35 && floor(var.redis_snapshot_retention_days) == var.redis_snapshot_retention_days
    error_message = "redis_snapshot_retention_days must be a whole number from 0 to 35."
  }
}

# ---------------------------------------------------------------------------------------------
# Secrets, API and monitoring
# ---------------------------------------------------------------------------------------------

variable "secret_recovery_window_days" {
  description = "Days Secrets Manager keeps the app secret after destroy; 0 deletes it at once (so the same name can be created again immediately)."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30 && floor(var.secret_recovery_window_days) == var.secret_recovery_window_days)
    error_message = "secret_recovery_window_days must be 0 or a whole number from 7 to 30."
  }
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second the HTTP API's $default stage accepts before answering 429."
  type        = number
  default     = 500

  validation {
    condition     = var.api_throttling_rate_limit >= 1 && var.api_throttling_rate_limit <= 10000
    error_message = "api_throttling_rate_limit must be from 1 to 10000."
  }
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests the HTTP API's $default stage accepts above the rate limit."
  type        = number
  default     = 1000

  validation {
    condition     = var.api_throttling_burst_limit >= 1 && var.api_throttling_burst_limit <= 5000 && floor(var.api_throttling_burst_limit) == var.api_throttling_burst_limit
    error_message = "api_throttling_burst_limit must be a whole number from 1 to 5000."
  }
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (functions and API access log); 0 keeps logs forever."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch's values: 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "alarm_sns_topic_arns" {
  description = "SNS topics notified when an alarm (dead-letter queue not empty) fires or clears; empty means the alarm only shows in CloudWatch."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.alarm_sns_topic_arns : can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", arn))])
    error_message = "alarm_sns_topic_arns must contain SNS topic ARNs."
  }
}

variable "enable_webhooks" {
  description = "Send webhooks: EventBridge runs the dispatcher in the worker function on webhook_dispatch_schedule. Needs enable_nat_gateway (endpoints are on the internet)."
  type        = bool
  default     = false
}

variable "webhook_dispatch_schedule" {
  description = "How often EventBridge runs the webhook dispatcher in the worker function (an EventBridge schedule expression; one minute is its shortest rate)."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate\\([0-9]+ (minute|minutes|hour|hours|day|days)\\)|cron\\(.+\\))$", var.webhook_dispatch_schedule))
    error_message = "webhook_dispatch_schedule must be an EventBridge rate(...) or cron(...) expression."
  }
}

variable "reconcile_schedule" {
  description = "How often EventBridge runs the reconciler in the worker function (an EventBridge schedule expression)."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^(rate\\([0-9]+ (minute|minutes|hour|hours|day|days)\\)|cron\\(.+\\))$", var.reconcile_schedule))
    error_message = "reconcile_schedule must be an EventBridge rate(...) or cron(...) expression."
  }
}
