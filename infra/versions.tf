terraform {
  # check blocks need 1.5; 1.6 is the oldest release still tested against this configuration.
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State holds the generated database password and Redis auth token (random_password, the
  # Secrets Manager secret version): keep it in an encrypted, access-controlled backend, e.g.
  #
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "payonce/prod.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Project     = "payonce"
        Environment = var.environment
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}
