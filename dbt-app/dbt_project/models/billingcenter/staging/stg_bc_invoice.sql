select
  ID as invoice_id, PUBLICID as public_id, ACCOUNTID as account_id, INVOICENUMBER as invoice_number,
  cast(AMOUNT as {{ dbt.type_numeric() }}) as amount, DUEDATE as due_date, STATUS as invoice_status,
  BATCH_ID as batch_id
from ({{ cda_current('billingcenter', 'bc_invoice', ['PUBLICID', 'ACCOUNTID', 'INVOICENUMBER', 'AMOUNT', 'DUEDATE', 'STATUS']) }}) current_rows
