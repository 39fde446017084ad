/**
 * What the watchdog needs from an alert channel. The real implementation starts the region's alert
 * workflow (`sfn-alert-publisher.ts`), which publishes to the alerts topic: the Lambda carries no
 * SNS client (docs/watchdog.md, "How alerts leave the Lambda").
 */
export interface Alert {
  /** At most 100 characters (SNS email subject limit). */
  subject: string;
  message: string;
  /**
   * Names this alert: publishing the same key twice publishes it once. The watchdog's marker for
   * a once-per-batch alert (e.g. `late-<batchId>`), or the tick for an every-tick alert.
   */
  key: string;
}

export interface AlertPublisher {
  publish(alert: Alert): Promise<void>;
}
