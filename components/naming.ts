import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AccountContext } from '../contracts/naming';

// The naming rules live in contracts/naming.ts (k8s/ and ops/ use them too). What stays here is the
// components' own: a pipeline's tags, the account resolved through provider invokes, ARNs built from it.

/** The platform's tags plus the pipeline's name: the tags of everything one pipeline owns. */
export function pipelineTags(
  tags: Readonly<Record<string, string>>,
  pipeline: string,
): Record<string, string> {
  return { ...tags, pipeline };
}

export function accountContext(opts: pulumi.InvokeOutputOptions): AccountContext {
  const identity = aws.getCallerIdentityOutput({}, opts);
  const partition = aws.getPartitionOutput({}, opts);
  return { accountId: identity.accountId, partition: partition.partition };
}

/** An ARN in this account, built from parts that are known in every region. */
export function arn(
  account: AccountContext,
  service: string,
  region: string,
  resource: pulumi.Input<string>,
): pulumi.Output<string> {
  return pulumi.interpolate`arn:${account.partition}:${service}:${region}:${account.accountId}:${resource}`;
}
