# A Pub/Sub topic is the alerts' destination everything else subscribes to, as the SNS topic is on AWS.
resource "google_pubsub_topic" "alerts" {
  count = var.monitoring == null ? 0 : 1

  name   = "${local.name}-alerts"
  labels = var.tags
}

resource "google_pubsub_topic_iam_member" "alerts" {
  count = var.monitoring == null ? 0 : 1

  topic  = google_pubsub_topic.alerts[0].id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.current.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
}

resource "google_monitoring_notification_channel" "alerts" {
  count = var.monitoring == null ? 0 : 1

  display_name = "${local.name} alerts"
  type         = "pubsub"
  labels       = { topic = google_pubsub_topic.alerts[0].id }
  user_labels  = var.tags
}

resource "google_monitoring_notification_channel" "email" {
  count = try(var.monitoring.alert_email, null) == null ? 0 : 1

  display_name = "${local.name} alerts (email)"
  type         = "email"
  labels       = { email_address = var.monitoring.alert_email }
  user_labels  = var.tags
}

resource "google_monitoring_alert_policy" "cpu_high" {
  count = var.monitoring == null ? 0 : var.instance_count

  display_name          = "${local.name} cpu high app-${count.index + 1}"
  combiner              = "OR"
  enabled               = var.monitoring.alerts_enabled
  notification_channels = concat(google_monitoring_notification_channel.alerts[*].id, google_monitoring_notification_channel.email[*].id)
  user_labels           = var.tags

  conditions {
    display_name = "CPU above ${var.monitoring.cpu_alarm_threshold}%"
    condition_threshold {
      filter          = "metric.type=\"compute.googleapis.com/instance/cpu/utilization\" AND resource.type=\"gce_instance\" AND resource.labels.instance_id=\"${google_compute_instance.app[count.index].instance_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.monitoring.cpu_alarm_threshold / 100
      duration        = "600s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MEAN"
      }
    }
  }
}
