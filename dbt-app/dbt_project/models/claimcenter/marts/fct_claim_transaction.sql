select
  t.transaction_id, t.claim_id, t.exposure_id, e.exposure_type, t.transaction_type,
  t.transaction_status, t.amount, t.created_at, t.batch_id
from {{ ref('stg_cc_transaction') }} t
left join {{ ref('stg_cc_exposure') }} e on e.exposure_id = t.exposure_id
