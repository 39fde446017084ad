import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { IamStatement } from '../contracts/iam';
import { iamRoleName, platformName } from '../contracts/naming';
import type { StateMachineDefinition } from '../state-machines/asl';
import { observabilityStatements, policyFromStatements } from '../state-machines/policy';
import { renderDefinition } from '../state-machines/tasks';
import { serviceRole } from './service-role';

export interface WorkflowArgs {
  /** The ASL, built by a `state-machines/` function. */
  readonly definition: StateMachineDefinition;
  /** The IAM the definition's states need, returned by the same function: the role gets exactly these. */
  readonly statements: readonly IamStatement[];
  /** Short purpose for names, e.g. "policycenter-upstream" (the region is appended to the role). */
  readonly purpose: string;
  /** This stack's region; appended to the role name. */
  readonly region: string;
  /** Step Functions log level; `ALL` also logs execution data. */
  readonly logLevel: 'ERROR' | 'ALL';
  /** Retention of the workflow's log group. */
  readonly logRetentionDays: number;
  /**
   * Tags on the state machine, its role and log group.
   * @default none
   */
  readonly tags?: Record<string, string>;
}

/**
 * A Standard Step Functions workflow whose role policy is derived from its definition, with
 * logging to its own log group and X-Ray tracing.
 */
export class Workflow extends pulumi.ComponentResource {
  readonly stateMachine: aws.sfn.StateMachine;
  readonly role: aws.iam.Role;
  readonly arn: pulumi.Output<string>;
  readonly name: pulumi.Output<string>;
  readonly purpose: string;

  constructor(name: string, args: WorkflowArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:workflows:Workflow', name, {}, opts);
    this.purpose = args.purpose;
    const tags = args.tags ?? {};

    const stateMachineName = platformName(args.purpose);
    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: `/aws/vendedlogs/states/${stateMachineName}`, retentionInDays: args.logRetentionDays, tags },
      { parent: this },
    );

    const { role, policy } = serviceRole(
      name,
      {
        roleName: iamRoleName(args.purpose, args.region),
        service: 'states.amazonaws.com',
        policy: policyFromStatements([...args.statements, ...observabilityStatements()]),
        tags,
      },
      { parent: this },
    );
    this.role = role;

    this.stateMachine = new aws.sfn.StateMachine(
      `${name}-sm`,
      {
        name: stateMachineName,
        type: 'STANDARD',
        roleArn: this.role.arn,
        definition: renderDefinition(args.definition),
        loggingConfiguration: {
          level: args.logLevel,
          includeExecutionData: args.logLevel === 'ALL',
          logDestination: pulumi.interpolate`${logGroup.arn}:*`,
        },
        tracingConfiguration: { enabled: true },
        tags,
      },
      { parent: this, dependsOn: [policy] },
    );
    this.arn = this.stateMachine.arn;
    this.name = this.stateMachine.name;
    this.registerOutputs({ arn: this.arn });
  }
}
