-- One row per policy; the policy number is the one of its newest bound (or latest) period.
with latest_period as (
  select policy_id, policy_number, period_end,
    row_number() over (partition by policy_id order by case when period_status = 'Bound' then 0 else 1 end, period_start desc) as rn
  from {{ ref('stg_pc_policyperiod') }}
)
select
  p.policy_id, p.account_id, p.product_code, p.original_effective_date,
  lp.policy_number, lp.period_end as current_period_end
from {{ ref('stg_pc_policy') }} p
left join latest_period lp on lp.policy_id = p.policy_id and lp.rn = 1
