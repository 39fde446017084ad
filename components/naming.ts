import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

/**
 * Physical names. Only what another region, another stack or an operator must find by name is
 * named explicitly; everything else is auto-named by Pulumi.
 */

/** IAM is global, so explicit role names carry the region to stay unique across the two stacks. */
export function iamRoleName(purpose: string, region: string): string {
  const name = `etl-${purpose}-${region}`;
  if (name.length > 64)
    throw new Error(`IAM role name "${name}" exceeds 64 characters; shorten "${purpose}"`);
  return name;
}

/** The platform's tags plus the pipeline's name: the tags of everything one pipeline owns. */
export function pipelineTags(
  tags: Readonly<Record<string, string>>,
  pipeline: string,
): Record<string, string> {
  return { ...tags, pipeline };
}

/** Account and partition of the deploying credentials, resolved once per component. */
export interface AccountContext {
  readonly accountId: pulumi.Output<string>;
  readonly partition: pulumi.Output<string>;
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
