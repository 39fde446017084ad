with paid as (
  select invoice_id, sum(amount) as paid_amount from {{ ref('stg_bc_payment') }} group by invoice_id
)
select
  i.invoice_id, i.account_id, i.invoice_number, i.invoice_status, i.due_date, i.amount,
  coalesce(p.paid_amount, 0) as paid_amount,
  i.amount - coalesce(p.paid_amount, 0) as outstanding_amount,
  i.batch_id
from {{ ref('stg_bc_invoice') }} i
left join paid p on p.invoice_id = i.invoice_id
