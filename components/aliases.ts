import type * as pulumi from '@pulumi/pulumi';

/**
 * Options for a direct child of a component that was inserted into an already deployed tree
 * (PipelineStack, LatenessWatchdog): parented to the component, and aliased to the URN it had as a
 * child of `formerParent`. The engine derives the old URNs of the child's own descendants from this
 * alias, so a `pulumi up` keeps every deployed resource instead of replacing it.
 */
export function insertedParentOptions(
  component: pulumi.Resource,
  formerParent: pulumi.Resource | undefined,
): { parent: pulumi.Resource; aliases?: pulumi.Alias[] } {
  return formerParent ? { parent: component, aliases: [{ parent: formerParent }] } : { parent: component };
}
