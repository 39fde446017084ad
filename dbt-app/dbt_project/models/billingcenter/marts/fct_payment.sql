select
  p.payment_id, p.account_id, p.invoice_id, p.amount, p.received_date, p.payment_method,
  -- negative: paid early
  {{ dbt.datediff('i.due_date', 'p.received_date', 'day') }} as days_after_due,
  cast(p.batch_id as {{ dbt.type_string() }}) as batch_id
from {{ ref('stg_bc_payment') }} p
left join {{ ref('stg_bc_invoice') }} i on i.invoice_id = p.invoice_id
