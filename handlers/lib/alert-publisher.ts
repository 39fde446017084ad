/**
 * What the watchdog needs from an alert channel. The real implementation (SNS Publish) lives in
 * `sns-publisher.ts`, loaded lazily so that tests injecting a publisher never load the SNS SDK.
 */
export interface Alert {
  /** At most 100 characters (SNS email subject limit). */
  subject: string;
  message: string;
}

export interface AlertPublisher {
  publish(alert: Alert): Promise<void>;
}
