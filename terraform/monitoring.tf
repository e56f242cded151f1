resource "aws_sns_topic" "alerts" {
  count = var.monitoring == null ? 0 : 1

  name = "${local.name}-alerts"

  tags = { Name = "${local.name}-alerts" }
}

resource "aws_sns_topic_subscription" "email" {
  count = try(var.monitoring.alert_email, null) == null ? 0 : 1

  topic_arn = aws_sns_topic.alerts[0].arn
  protocol  = "email"
  endpoint  = var.monitoring.alert_email
}

resource "aws_cloudwatch_metric_alarm" "cpu_high" {
  count = var.monitoring == null ? 0 : var.instance_count

  alarm_name          = "${local.name}-cpu-high-app-${count.index + 1}"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.monitoring.cpu_alarm_threshold
  dimensions          = { InstanceId = aws_instance.app[count.index].id }
  actions_enabled     = var.monitoring.alerts_enabled
  alarm_actions       = [aws_sns_topic.alerts[0].arn]

  tags = { Name = "${local.name}-cpu" }
}
