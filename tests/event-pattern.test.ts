import * as assert from 'node:assert/strict';
import { type EventPattern, matchesPattern, validatePattern } from '../events/pattern';

/**
 * Table-driven tests for events/pattern.ts. Patterns and events come from the AWS EventBridge
 * user guide ("Amazon EventBridge event patterns" and its sub-pages, "Content filtering in
 * Amazon EventBridge event patterns" / comparison operators); the doc section is named per
 * group. Every matching case asserts an explicit true/false, and every pattern used in a match
 * case must also validate cleanly, so a "does not match" can never pass because the pattern
 * was silently rejected.
 */

type Case = { name: string; pattern: EventPattern; event: unknown; expect: boolean };

// "Amazon EventBridge event patterns": the sample EC2 event.
const ec2Event = {
  version: '0',
  id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
  'detail-type': 'EC2 Instance State-change Notification',
  source: 'aws.ec2',
  account: '111122223333',
  time: '2017-12-22T18:43:48Z',
  region: 'us-west-1',
  resources: ['arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0'],
  detail: { 'instance-id': 'i-1234567890abcdef0', state: 'terminated' },
};

// "Matching events on null values and empty strings": the Auto Scaling event.
const asgEvent = {
  version: '0',
  id: '3e3c153a-8339-4e30-8c35-687ebef853fe',
  'detail-type': 'EC2 Instance Launch Successful',
  source: 'aws.autoscaling',
  account: '123456789012',
  time: '2015-11-11T21:31:47Z',
  region: 'us-east-1',
  resources: [],
  detail: { eventVersion: '', responseElements: null },
};

// "Value matching": the (truncated) Macie alert.
const macieEvent = {
  'detail-type': 'Macie Alert',
  source: 'aws.macie',
  detail: {
    'notification-type': 'ALERT_CREATED',
    tags: ['Custom_Alert', 'Insider'],
    'risk-score': 80,
    trigger: { 'alert-type': 'basic', risk: 8 },
  },
};

// Content filtering: the event the operator examples are written against.
const filterEvent = {
  time: '2017-10-02T16:24:49Z',
  source: 'aws.ec2',
  detail: { 'c-count': 5, 'd-count': 3, 'x-limit': 301.8, 'source-ip': '10.0.0.33', state: 'running' },
};

const withDetail = (detail: Record<string, unknown>) => ({ source: 'test', detail });

const ec2TerminationPattern: EventPattern = {
  source: ['aws.ec2'],
  'detail-type': ['EC2 Instance State-change Notification'],
  detail: { state: ['terminated'] },
};

const groups: Record<string, Case[]> = {
  // Amazon EventBridge event patterns > Event pattern syntax / Matching event values
  'event pattern syntax': [
    {
      name: 'EC2 termination pattern matches the sample event',
      pattern: ec2TerminationPattern,
      event: ec2Event,
      expect: true,
    },
    {
      name: 'a different state does not match',
      pattern: { ...ec2TerminationPattern, detail: { state: ['running'] } },
      event: ec2Event,
      expect: false,
    },
    {
      name: 'leaf array is an OR: ["aws.ec2", "aws.fargate"]',
      pattern: { source: ['aws.ec2', 'aws.fargate'] },
      event: ec2Event,
      expect: true,
    },
    {
      name: 'OR with no member present does not match',
      pattern: { source: ['aws.fargate', 'aws.s3'] },
      event: ec2Event,
      expect: false,
    },
    {
      name: 'all pattern fields must be in the event',
      pattern: { source: ['aws.ec2'], detail: { reason: ['x'] } },
      event: ec2Event,
      expect: false,
    },
    {
      name: 'same nesting structure is required',
      pattern: { state: ['terminated'] },
      event: ec2Event,
      expect: false,
    },
    {
      name: 'strings match exactly, no case folding',
      pattern: { source: ['AWS.EC2'] },
      event: ec2Event,
      expect: false,
    },
    {
      name: 'event fields absent from the pattern are ignored',
      pattern: { region: ['us-west-1'] },
      event: ec2Event,
      expect: true,
    },
    // Considerations: keys are joined with "." when compiled, so these are the same pattern.
    {
      name: 'dotted key is the same as nesting (documented caveat)',
      pattern: { 'detail.state': ['terminated'] },
      event: ec2Event,
      expect: true,
    },
  ],
  // Amazon EventBridge event patterns > Value matching (Macie example): numbers and nested objects
  'value matching (numbers, nested objects)': [
    {
      name: 'risk-score 80 and trigger.risk 8 match',
      pattern: {
        source: ['aws.macie'],
        'detail-type': ['Macie Alert'],
        detail: { 'risk-score': [80], trigger: { risk: [8] } },
      },
      event: macieEvent,
      expect: true,
    },
    {
      name: 'wrong nested number does not match',
      pattern: { detail: { 'risk-score': [80], trigger: { risk: [9] } } },
      event: macieEvent,
      expect: false,
    },
    {
      name: 'the string "80" is not the number 80',
      pattern: { detail: { 'risk-score': ['80'] } },
      event: macieEvent,
      expect: false,
    },
    {
      name: 'the boolean true is not the string "true"',
      pattern: { detail: { flag: ['true'] } },
      event: withDetail({ flag: true }),
      expect: false,
    },
    {
      name: 'booleans match exactly',
      pattern: { detail: { flag: [true] } },
      event: withDetail({ flag: true }),
      expect: true,
    },
  ],
  // Matching events on null values and empty strings
  'null values and empty strings': [
    {
      name: '[""] matches an empty string',
      pattern: { detail: { eventVersion: [''] } },
      event: asgEvent,
      expect: true,
    },
    {
      name: '[null] matches a null value',
      pattern: { detail: { responseElements: [null] } },
      event: asgEvent,
      expect: true,
    },
    {
      name: '[""] does not match null',
      pattern: { detail: { responseElements: [''] } },
      event: asgEvent,
      expect: false,
    },
    {
      name: '[null] does not match an empty string',
      pattern: { detail: { eventVersion: [null] } },
      event: asgEvent,
      expect: false,
    },
    {
      name: '[null] does not match an absent field',
      pattern: { detail: { other: [null] } },
      event: asgEvent,
      expect: false,
    },
  ],
  // Arrays in Amazon EventBridge event patterns (matching on multiple field values)
  arrays: [
    {
      name: 'event array matches if it intersects the pattern array',
      pattern: {
        resources: [
          'arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f',
          'arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f',
          'arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f',
        ],
      },
      event: {
        resources: [
          'arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate',
          'arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f',
        ],
      },
      expect: true,
    },
    {
      name: 'disjoint arrays do not match',
      pattern: { resources: ['arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f'] },
      event: { resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f'] },
      expect: false,
    },
    {
      name: 'an empty event array matches nothing',
      pattern: { resources: ['x'] },
      event: asgEvent,
      expect: false,
    },
    {
      name: 'an operator applies to each array element',
      pattern: { detail: { tags: [{ prefix: 'Ins' }] } },
      event: macieEvent,
      expect: true,
    },
    // Arrays of objects are crushed out; fields must come from the same element (event-ruler).
    {
      name: 'array of objects: a field of one element matches',
      pattern: { employees: { firstName: ['Anna'] } },
      event: {
        employees: [
          { firstName: 'John', lastName: 'Doe' },
          { firstName: 'Anna', lastName: 'Smith' },
        ],
      },
      expect: true,
    },
    {
      name: 'array of objects: fields from two different elements do not match together',
      pattern: { employees: { firstName: ['Anna'], lastName: ['Doe'] } },
      event: {
        employees: [
          { firstName: 'John', lastName: 'Doe' },
          { firstName: 'Anna', lastName: 'Smith' },
        ],
      },
      expect: false,
    },
  ],
  // Content filtering > Prefix matching (+ prefix with equals-ignore-case)
  prefix: [
    {
      name: 'time starts with 2017-10-02',
      pattern: { time: [{ prefix: '2017-10-02' }] },
      event: filterEvent,
      expect: true,
    },
    {
      name: 'other day does not match',
      pattern: { time: [{ prefix: '2017-10-03' }] },
      event: filterEvent,
      expect: false,
    },
    {
      name: 'prefix only applies to strings',
      pattern: { detail: { 'c-count': [{ prefix: '5' }] } },
      event: filterEvent,
      expect: false,
    },
    {
      name: 'prefix ignore case: EVENTBRIDGE starts with EventB',
      pattern: { detail: { service: [{ prefix: { 'equals-ignore-case': 'EventB' } }] } },
      event: withDetail({ service: 'EVENTBRIDGE' }),
      expect: true,
    },
    {
      name: 'prefix ignore case still anchors at the start',
      pattern: { detail: { service: [{ prefix: { 'equals-ignore-case': 'EventB' } }] } },
      event: withDetail({ service: 'Amazon EventBridge' }),
      expect: false,
    },
  ],
  // Content filtering > Suffix matching (+ suffix with equals-ignore-case)
  suffix: [
    {
      name: 'FileName ends with .png',
      pattern: { FileName: [{ suffix: '.png' }] },
      event: { FileName: 'image.png' },
      expect: true,
    },
    {
      name: 'suffix is case-sensitive',
      pattern: { FileName: [{ suffix: '.png' }] },
      event: { FileName: 'image.PNG' },
      expect: false,
    },
    {
      name: 'suffix ignore case matches .PNG',
      pattern: { detail: { FileName: [{ suffix: { 'equals-ignore-case': '.png' } }] } },
      event: withDetail({ FileName: 'image.PNG' }),
      expect: true,
    },
    {
      name: 'suffix ignore case does not match .jpg',
      pattern: { detail: { FileName: [{ suffix: { 'equals-ignore-case': '.png' } }] } },
      event: withDetail({ FileName: 'image.jpg' }),
      expect: false,
    },
  ],
  // Content filtering > Equals-ignore-case matching
  'equals-ignore-case': [
    {
      name: 'detail-type matches regardless of case',
      pattern: { 'detail-type': [{ 'equals-ignore-case': 'ec2 instance state-change notification' }] },
      event: ec2Event,
      expect: true,
    },
    {
      name: 'equals-ignore-case is still whole-string equality',
      pattern: { 'detail-type': [{ 'equals-ignore-case': 'ec2 instance state-change' }] },
      event: ec2Event,
      expect: false,
    },
  ],
  // Content filtering > Anything-but matching (value, list, prefix, suffix, ignore case, wildcard)
  'anything-but': [
    {
      name: 'anything-but "initializing" matches "running"',
      pattern: { detail: { state: [{ 'anything-but': 'initializing' }] } },
      event: filterEvent,
      expect: true,
    },
    {
      name: 'anything-but "initializing" rejects "initializing"',
      pattern: { detail: { state: [{ 'anything-but': 'initializing' }] } },
      event: withDetail({ state: 'initializing' }),
      expect: false,
    },
    {
      name: 'anything-but 123 matches 456',
      pattern: { detail: { 'x-limit': [{ 'anything-but': 123 }] } },
      event: withDetail({ 'x-limit': 456 }),
      expect: true,
    },
    {
      name: 'anything-but 123 rejects 123',
      pattern: { detail: { 'x-limit': [{ 'anything-but': 123 }] } },
      event: withDetail({ 'x-limit': 123 }),
      expect: false,
    },
    {
      name: 'anything-but ["stopped","overloaded"] rejects "stopped"',
      pattern: { detail: { state: [{ 'anything-but': ['stopped', 'overloaded'] }] } },
      event: withDetail({ state: 'stopped' }),
      expect: false,
    },
    {
      name: 'anything-but ["stopped","overloaded"] matches "running"',
      pattern: { detail: { state: [{ 'anything-but': ['stopped', 'overloaded'] }] } },
      event: filterEvent,
      expect: true,
    },
    {
      name: 'anything-but [100,200,300] rejects 200',
      pattern: { detail: { 'x-limit': [{ 'anything-but': [100, 200, 300] }] } },
      event: withDetail({ 'x-limit': 200 }),
      expect: false,
    },
    {
      name: 'anything-but [100,200,300] matches 301.8',
      pattern: { detail: { 'x-limit': [{ 'anything-but': [100, 200, 300] }] } },
      event: filterEvent,
      expect: true,
    },
    // The trap other local emulators get wrong.
    {
      name: 'anything-but {prefix:"init"} does NOT match "initializing"',
      pattern: { detail: { state: [{ 'anything-but': { prefix: 'init' } }] } },
      event: withDetail({ state: 'initializing' }),
      expect: false,
    },
    {
      name: 'anything-but {prefix:"init"} DOES match "stopped"',
      pattern: { detail: { state: [{ 'anything-but': { prefix: 'init' } }] } },
      event: withDetail({ state: 'stopped' }),
      expect: true,
    },
    {
      name: 'anything-but {suffix:".txt"} rejects file.txt',
      pattern: { detail: { FileName: [{ 'anything-but': { suffix: '.txt' } }] } },
      event: withDetail({ FileName: 'notes.txt' }),
      expect: false,
    },
    {
      name: 'anything-but {suffix:".txt"} matches file.png',
      pattern: { detail: { FileName: [{ 'anything-but': { suffix: '.txt' } }] } },
      event: withDetail({ FileName: 'image.png' }),
      expect: true,
    },
    {
      name: 'anything-but ignore case rejects "INITIALIZING"',
      pattern: { detail: { state: [{ 'anything-but': { 'equals-ignore-case': 'initializing' } }] } },
      event: withDetail({ state: 'INITIALIZING' }),
      expect: false,
    },
    {
      name: 'anything-but ignore case list rejects "Stopped"',
      pattern: {
        detail: { state: [{ 'anything-but': { 'equals-ignore-case': ['initializing', 'stopped'] } }] },
      },
      event: withDetail({ state: 'Stopped' }),
      expect: false,
    },
    {
      name: 'anything-but ignore case list matches "running"',
      pattern: {
        detail: { state: [{ 'anything-but': { 'equals-ignore-case': ['initializing', 'stopped'] } }] },
      },
      event: filterEvent,
      expect: true,
    },
    {
      name: 'anything-but wildcard rejects a path with /lib/',
      pattern: { detail: { FilePath: [{ 'anything-but': { wildcard: '*/lib/*' } }] } },
      event: withDetail({ FilePath: '/usr/lib/libc.so' }),
      expect: false,
    },
    {
      name: 'anything-but wildcard list matches a path outside lib and bin',
      pattern: { detail: { FilePath: [{ 'anything-but': { wildcard: ['*/lib/*', '*/bin/*'] } }] } },
      event: withDetail({ FilePath: '/home/user/notes' }),
      expect: true,
    },
    {
      name: 'anything-but needs the field to be present',
      pattern: { detail: { state: [{ 'anything-but': 'initializing' }] } },
      event: withDetail({}),
      expect: false,
    },
    {
      name: 'anything-but on an event array matches if any element is allowed',
      pattern: { detail: { state: [{ 'anything-but': 'initializing' }] } },
      event: withDetail({ state: ['initializing', 'running'] }),
      expect: true,
    },
  ],
  // Content filtering > Numeric matching
  numeric: [
    {
      name: 'documented example: c-count (0,5], d-count <10, x-limit = 3.018e2',
      pattern: {
        detail: {
          'c-count': [{ numeric: ['>', 0, '<=', 5] }],
          'd-count': [{ numeric: ['<', 10] }],
          'x-limit': [{ numeric: ['=', 3.018e2] }],
        },
      },
      event: filterEvent,
      expect: true,
    },
    {
      name: 'lower bound is exclusive for ">"',
      pattern: { detail: { 'c-count': [{ numeric: ['>', 0, '<=', 5] }] } },
      event: withDetail({ 'c-count': 0 }),
      expect: false,
    },
    {
      name: 'upper bound is inclusive for "<="',
      pattern: { detail: { 'c-count': [{ numeric: ['>', 0, '<=', 5] }] } },
      event: withDetail({ 'c-count': 5 }),
      expect: true,
    },
    {
      name: 'above the range does not match',
      pattern: { detail: { 'c-count': [{ numeric: ['>', 0, '<=', 5] }] } },
      event: withDetail({ 'c-count': 5.5 }),
      expect: false,
    },
    {
      name: '">=" includes the bound',
      pattern: { detail: { n: [{ numeric: ['>=', 10] }] } },
      event: withDetail({ n: 10 }),
      expect: true,
    },
    {
      name: 'numeric "=" compares numerically (event written as 3.0e2)',
      pattern: { detail: { n: [{ numeric: ['=', 300] }] } },
      event: JSON.parse('{"detail":{"n":3.0e2}}'),
      expect: true,
    },
    {
      name: 'numeric only matches JSON numbers, not "301.8"',
      pattern: { detail: { 'x-limit': [{ numeric: ['=', 301.8] }] } },
      event: withDetail({ 'x-limit': '301.8' }),
      expect: false,
    },
    {
      name: 'event values beyond 5e9 are outside numeric matching',
      pattern: { detail: { n: [{ numeric: ['>', 0] }] } },
      event: withDetail({ n: 6e9 }),
      expect: false,
    },
  ],
  // Content filtering > IP address matching
  cidr: [
    {
      name: '10.0.0.123 is in 10.0.0.0/24',
      pattern: { detail: { sourceIPAddress: [{ cidr: '10.0.0.0/24' }] } },
      event: withDetail({ sourceIPAddress: '10.0.0.123' }),
      expect: true,
    },
    {
      name: '10.0.1.1 is not in 10.0.0.0/24',
      pattern: { detail: { sourceIPAddress: [{ cidr: '10.0.0.0/24' }] } },
      event: withDetail({ sourceIPAddress: '10.0.1.1' }),
      expect: false,
    },
    {
      name: 'IPv6 address in 2001:db8::/32',
      pattern: { detail: { ip: [{ cidr: '2001:db8::/32' }] } },
      event: withDetail({ ip: '2001:db8:0:1::7' }),
      expect: true,
    },
    {
      name: 'IPv6 address outside 2001:db8::/32',
      pattern: { detail: { ip: [{ cidr: '2001:db8::/32' }] } },
      event: withDetail({ ip: '2001:db9::1' }),
      expect: false,
    },
    {
      name: 'a non-IP string is not in any block',
      pattern: { detail: { ip: [{ cidr: '0.0.0.0/0' }] } },
      event: withDetail({ ip: 'localhost' }),
      expect: false,
    },
  ],
  // Content filtering > Exists matching (leaf nodes only; null; arrays)
  exists: [
    {
      name: 'exists:true matches a present field',
      pattern: { detail: { 'c-count': [{ exists: true }] } },
      event: filterEvent,
      expect: true,
    },
    {
      name: 'exists:true does not match an absent field',
      pattern: { detail: { 'c-count': [{ exists: true }] } },
      event: withDetail({ state: 'x' }),
      expect: false,
    },
    {
      name: 'exists:false matches an event without detail.c-count',
      pattern: { detail: { 'c-count': [{ exists: false }] } },
      event: {
        'detail-type': 'EC2 Instance State-change Notification',
        detail: { state: ['initializing', 'running'] },
      },
      expect: true,
    },
    {
      name: 'exists:false also matches when c-count is an object (not a leaf)',
      pattern: { detail: { 'c-count': [{ exists: false }] } },
      event: { detail: { state: ['initializing', 'running'], 'c-count': { c1: 100 } } },
      expect: true,
    },
    {
      name: 'exists:false does not match a present field',
      pattern: { detail: { 'c-count': [{ exists: false }] } },
      event: filterEvent,
      expect: false,
    },
    {
      name: 'exists:false matches when the parent object is absent',
      pattern: { detail: { 'c-count': [{ exists: false }] } },
      event: { source: 'x' },
      expect: true,
    },
    {
      name: 'exists:true matches a null value (the field is present)',
      pattern: { detail: { responseElements: [{ exists: true }] } },
      event: asgEvent,
      expect: true,
    },
    {
      name: 'exists:false does not match a null value',
      pattern: { detail: { responseElements: [{ exists: false }] } },
      event: asgEvent,
      expect: false,
    },
    {
      name: 'exists:true does not match an empty array (no leaf values)',
      pattern: { resources: [{ exists: true }] },
      event: asgEvent,
      expect: false,
    },
    {
      name: 'exists:false matches an empty array',
      pattern: { resources: [{ exists: false }] },
      event: asgEvent,
      expect: true,
    },
    {
      name: 'exists:true matches a non-empty array',
      pattern: { resources: [{ exists: true }] },
      event: ec2Event,
      expect: true,
    },
  ],
  // Content filtering > Wildcard matching
  wildcard: [
    {
      name: 'event bus ARN in any account',
      pattern: { EventBusArn: [{ wildcard: 'arn:aws:events:us-east-1:*:event-bus/*' }] },
      event: { EventBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/default' },
      expect: true,
    },
    {
      name: 'wildcard is anchored: other region does not match',
      pattern: { EventBusArn: [{ wildcard: 'arn:aws:events:us-east-1:*:event-bus/*' }] },
      event: { EventBusArn: 'arn:aws:events:us-west-2:123456789012:event-bus/default' },
      expect: false,
    },
    {
      name: '* matches the empty string',
      pattern: { source: [{ wildcard: 'Simple*Service' }] },
      event: { source: 'SimpleService' },
      expect: true,
    },
    {
      name: 'escaped \\* matches a literal star',
      pattern: { name: [{ wildcard: 'file\\*name' }] },
      event: { name: 'file*name' },
      expect: true,
    },
    {
      name: 'escaped \\* is not a wildcard',
      pattern: { name: [{ wildcard: 'file\\*name' }] },
      event: { name: 'file-x-name' },
      expect: false,
    },
    {
      name: 'regex metacharacters are literal',
      pattern: { name: [{ wildcard: 'a.c*' }] },
      event: { name: 'abc' },
      expect: false,
    },
  ],
  // Content filtering > $or matching
  $or: [
    {
      name: 'detail-level $or: first alternative matches',
      pattern: {
        detail: {
          $or: [
            { 'c-count': [{ numeric: ['>', 0, '<=', 5] }] },
            { 'd-count': [{ numeric: ['<', 10] }] },
            { 'x-limit': [{ numeric: ['=', 3.018e2] }] },
          ],
        },
      },
      event: withDetail({ 'c-count': 3, 'd-count': 50, 'x-limit': 1 }),
      expect: true,
    },
    {
      name: 'detail-level $or: no alternative matches',
      pattern: {
        detail: {
          $or: [
            { 'c-count': [{ numeric: ['>', 0, '<=', 5] }] },
            { 'd-count': [{ numeric: ['<', 10] }] },
            { 'x-limit': [{ numeric: ['=', 3.018e2] }] },
          ],
        },
      },
      event: withDetail({ 'c-count': 7, 'd-count': 50, 'x-limit': 1 }),
      expect: false,
    },
    {
      name: 'top-level $or is ANDed with the other fields',
      pattern: {
        source: ['aws.cloudwatch'],
        $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }],
      },
      event: { source: 'aws.ec2', namespace: 'AWS/EC2' },
      expect: false,
    },
    {
      name: 'top-level $or: second alternative with the AND field',
      pattern: {
        source: ['aws.cloudwatch'],
        $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }],
      },
      event: { source: 'aws.cloudwatch', namespace: 'AWS/EC2' },
      expect: true,
    },
  ],
  // Content filtering > Complex example with multiple matching
  'complex example': [
    {
      name: 'prefix + anything-but + numeric + cidr all hold',
      pattern: {
        time: [{ prefix: '2017-10-02' }],
        detail: {
          state: [{ 'anything-but': 'initializing' }],
          'c-count': [{ numeric: ['>', 0, '<=', 5] }],
          'd-count': [{ numeric: ['<', 10] }],
          'x-limit': [{ 'anything-but': [100, 200, 300] }],
          'source-ip': [{ cidr: '10.0.0.0/8' }],
        },
      },
      event: filterEvent,
      expect: true,
    },
    {
      name: 'one failing field fails the whole pattern',
      pattern: {
        time: [{ prefix: '2017-10-02' }],
        detail: { state: [{ 'anything-but': 'running' }], 'c-count': [{ numeric: ['>', 0, '<=', 5] }] },
      },
      event: filterEvent,
      expect: false,
    },
  ],
};

describe('EventBridge event-pattern matcher (events/pattern.ts)', () => {
  for (const [group, cases] of Object.entries(groups)) {
    describe(group, () => {
      it('has both matching and non-matching cases', () => {
        assert.ok(cases.some((c) => c.expect) && cases.some((c) => !c.expect), group);
      });
      for (const c of cases) {
        it(`${c.expect ? 'matches' : 'rejects'}: ${c.name}`, () => {
          assert.deepEqual(validatePattern(c.pattern), [], 'the pattern itself must be valid');
          assert.equal(matchesPattern(c.pattern, c.event), c.expect);
        });
      }
    });
  }
});

// validatePattern: each invalid pattern must yield a problem naming the issue.
const invalid: { name: string; pattern: unknown; problem: RegExp }[] = [
  { name: 'empty match array', pattern: { source: [] }, problem: /source: empty array/ },
  { name: 'non-array leaf', pattern: { source: 'aws.ec2' }, problem: /source: value must be an array/ },
  {
    name: 'unknown operator',
    pattern: { source: [{ contains: 'ec2' }] },
    problem: /unknown operator "contains"/,
  },
  {
    name: 'operator object with two keys',
    pattern: { n: [{ numeric: ['>', 1], exists: true }] },
    problem: /exactly one key/,
  },
  { name: 'prefix with a number', pattern: { s: [{ prefix: 1 }] }, problem: /"prefix" takes a string/ },
  {
    name: 'numeric with a dangling operator',
    pattern: { n: [{ numeric: ['<'] }] },
    problem: /"numeric" takes/,
  },
  {
    name: 'numeric with a string bound',
    pattern: { n: [{ numeric: ['<', '10'] }] },
    problem: /is not a number/,
  },
  { name: 'numeric bound beyond 5e9', pattern: { n: [{ numeric: ['>', 6e9] }] }, problem: /outside/ },
  { name: 'numeric empty range', pattern: { n: [{ numeric: ['>', 10, '<', 5] }] }, problem: /empty range/ },
  {
    name: 'numeric two lower bounds',
    pattern: { n: [{ numeric: ['>', 1, '>=', 5] }] },
    problem: /one lower/,
  },
  {
    name: 'anything-but mixing strings and numbers',
    pattern: { s: [{ 'anything-but': ['a', 1] }] },
    problem: /only strings or only numbers/,
  },
  {
    name: 'anything-but with numeric inside',
    pattern: { s: [{ 'anything-but': { numeric: ['>', 1] } }] },
    problem: /does not support/,
  },
  { name: 'wildcard with consecutive stars', pattern: { s: [{ wildcard: 'a**b' }] }, problem: /consecutive/ },
  {
    name: 'wildcard with an invalid escape',
    pattern: { s: [{ wildcard: 'a\\b' }] },
    problem: /invalid escape/,
  },
  { name: 'cidr prefix too long', pattern: { ip: [{ cidr: '10.0.0.0/33' }] }, problem: /"cidr" takes/ },
  {
    name: 'exists with a non-boolean',
    pattern: { f: [{ exists: 'yes' }] },
    problem: /"exists" takes true or false/,
  },
  {
    name: '$or with a single alternative',
    pattern: { $or: [{ a: ['x'] }] },
    problem: /"\$or" must be an array of at least two/,
  },
  { name: 'empty nested object', pattern: { detail: {} }, problem: /detail: empty object/ },
  { name: 'pattern that is not an object', pattern: ['aws.ec2'], problem: /must be a JSON object/ },
  {
    name: 'problem inside a $or alternative',
    pattern: { $or: [{ a: ['x'] }, { b: [] }] },
    problem: /\$or\[1\]\.b: empty array/,
  },
];

describe('validatePattern', () => {
  for (const c of invalid) {
    it(`reports: ${c.name}`, () => {
      const problems = validatePattern(c.pattern);
      assert.ok(
        problems.some((p) => c.problem.test(p)),
        `expected a problem matching ${c.problem}, got ${JSON.stringify(problems)}`,
      );
    });
  }

  it('accepts every documented operator form', () => {
    const pattern = {
      source: ['aws.ec2', null, 3, true],
      detail: {
        a: [
          { prefix: 'x' },
          { prefix: { 'equals-ignore-case': 'x' } },
          { suffix: 'x' },
          { suffix: { 'equals-ignore-case': 'x' } },
        ],
        b: [
          { 'equals-ignore-case': 'x' },
          { wildcard: 'a*b\\*c\\\\' },
          { cidr: '2001:db8::/32' },
          { exists: false },
        ],
        c: [
          { 'anything-but': 'x' },
          { 'anything-but': 1 },
          { 'anything-but': ['x', 'y'] },
          { 'anything-but': [1, 2] },
        ],
        d: [
          { 'anything-but': { prefix: 'x' } },
          { 'anything-but': { suffix: 'x' } },
          { 'anything-but': { wildcard: ['*x*'] } },
        ],
        e: [{ numeric: ['=', 3.018e2] }, { numeric: ['<', 10] }, { numeric: ['>=', 0, '<', 5] }],
        $or: [{ f: ['x'] }, { g: { h: ['y'] } }],
      },
    };
    assert.deepEqual(validatePattern(pattern), []);
  });

  it('an invalid pattern never matches, even an event it would otherwise fit', () => {
    // "terminated" alone would match; the unknown operator next to it makes the rule invalid.
    const pattern = {
      source: ['aws.ec2'],
      detail: { state: ['terminated', { contains: 'term' }] },
    } as unknown as EventPattern;
    assert.notDeepEqual(validatePattern(pattern), []);
    assert.equal(matchesPattern(pattern, ec2Event), false);
    assert.equal(matchesPattern({ source: ['aws.ec2'] }, ec2Event), true);
  });
});
