select
  pp.policy_period_id, pp.policy_id, pp.policy_number, pp.job_id, j.job_number, j.job_type,
  pp.period_status, pp.period_start, pp.period_end,
  {{ dbt.datediff('pp.period_start', 'pp.period_end', 'day') }} as term_days,
  pp.total_premium, pp.is_most_recent_model, pp.batch_id
from {{ ref('stg_pc_policyperiod') }} pp
left join {{ ref('stg_pc_job') }} j on j.job_id = pp.job_id
