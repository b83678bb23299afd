"""Stand-ins for the AWS services the functions run in: the Step Functions (ASL) executor, the
Kinesis event-source mapping, the SAM template reader and the Lambda runtime."""
