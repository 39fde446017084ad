/**
 * The pipeline-name rule, spelt once (and the CDA table-name rule a pipeline's tables follow). Pipeline names end up in resource names, IAM role names
 * (64 chars, region included) and Step Functions execution names (80 chars, batch id included), so
 * they are short and plain: 2-24 lowercase letters, digits or hyphens, starting with a letter.
 */

/** The rule without anchors, to embed in larger patterns (batch ids, control-table keys). */
export const PIPELINE_NAME_BODY = '[a-z][a-z0-9-]{0,22}[a-z0-9]';

/** A whole pipeline name. */
export const PIPELINE_NAME_PATTERN = /* @__PURE__ */ new RegExp(`^${PIPELINE_NAME_BODY}$`);

/** What a message says the rule is. */
export const PIPELINE_NAME_RULE = '2-24 lowercase letters, digits or hyphens, starting with a letter';

/** A pipeline's Guidewire CDA tables: the lowercase CDA folder name, e.g. pc_policyperiod. */
export const CDA_TABLE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
