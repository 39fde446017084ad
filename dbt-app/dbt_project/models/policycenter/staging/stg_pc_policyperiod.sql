select
  ID as policy_period_id, PUBLICID as public_id, POLICYID as policy_id, JOBID as job_id,
  POLICYNUMBER as policy_number, STATUS as period_status, PERIODSTART as period_start,
  PERIODEND as period_end, cast(TOTALPREMIUMRPT as {{ dbt.type_numeric() }}) as total_premium,
  MOSTRECENTMODEL as is_most_recent_model, BATCH_ID as batch_id
from ({{ cda_current('policycenter', 'pc_policyperiod', ['PUBLICID', 'POLICYID', 'JOBID', 'POLICYNUMBER', 'STATUS', 'PERIODSTART', 'PERIODEND', 'TOTALPREMIUMRPT', 'MOSTRECENTMODEL']) }}) current_rows
