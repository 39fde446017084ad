with exposures as (
  select claim_id, count(*) as exposure_count from {{ ref('stg_cc_exposure') }} group by claim_id
),
money as (
  select claim_id,
    sum(case when transaction_type = 'Payment' then amount else 0 end) as paid_amount,
    sum(case when transaction_type = 'Reserve' then amount else 0 end) as reserve_amount
  from {{ ref('stg_cc_transaction') }}
  group by claim_id
)
select
  c.claim_id, c.claim_number, c.policy_number, c.insured_contact_id, ct.display_name as insured_name,
  c.claim_state, c.loss_date, c.reported_date,
  {{ dbt.datediff('c.loss_date', 'c.reported_date', 'day') }} as report_lag_days,
  -- first-notice deadline used by claims operations: 30 days after the loss
  {{ dbt.dateadd('day', 30, 'c.loss_date') }} as notice_deadline,
  coalesce(e.exposure_count, 0) as exposure_count,
  coalesce(m.paid_amount, 0) as paid_amount,
  coalesce(m.reserve_amount, 0) as reserve_amount
from {{ ref('stg_cc_claim') }} c
left join {{ ref('stg_cc_contact') }} ct on ct.contact_id = c.insured_contact_id
left join exposures e on e.claim_id = c.claim_id
left join money m on m.claim_id = c.claim_id
