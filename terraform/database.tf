locals {
  database_ports    = { postgres = 5432, mysql = 3306 }
  database_versions = { postgres = "16", mysql = "8.0" }
  production        = var.environment == "production"
}

resource "aws_security_group" "database" {
  count = var.database == null ? 0 : 1

  name_prefix = "${local.name}-database-"
  description = "${local.name} database"
  vpc_id      = aws_vpc.this.id

  ingress {
    protocol        = "tcp"
    from_port       = local.database_ports[var.database.engine]
    to_port         = local.database_ports[var.database.engine]
    security_groups = [aws_security_group.app.id]
  }

  tags = { Name = "${local.name}-database" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_subnet_group" "this" {
  count = var.database == null ? 0 : 1

  name       = "${local.name}-database"
  subnet_ids = aws_subnet.private[*].id

  tags = { Name = "${local.name}-database" }
}

resource "aws_db_instance" "this" {
  count = var.database == null ? 0 : 1

  identifier             = "${local.name}-database"
  engine                 = var.database.engine
  engine_version         = coalesce(var.database.engine_version, local.database_versions[var.database.engine])
  instance_class         = var.database.instance_class
  allocated_storage      = var.database.storage_gb
  storage_encrypted      = true
  multi_az               = var.database.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this[0].name
  vpc_security_group_ids = [aws_security_group.database[0].id]

  username                    = "app"
  manage_master_user_password = true

  backup_retention_period   = var.database.backup_retention_days
  deletion_protection       = local.production
  skip_final_snapshot       = !local.production
  final_snapshot_identifier = local.production ? "${local.name}-final" : null

  tags = { Name = "${local.name}-database" }
}
