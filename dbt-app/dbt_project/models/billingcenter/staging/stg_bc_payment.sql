select
  ID as payment_id, PUBLICID as public_id, ACCOUNTID as account_id, INVOICEID as invoice_id,
  cast(AMOUNT as {{ dbt.type_numeric() }}) as amount, RECEIVEDDATE as received_date,
  PAYMENTMETHOD as payment_method, BATCH_ID as batch_id
from ({{ cda_current('billingcenter', 'bc_payment', ['PUBLICID', 'ACCOUNTID', 'INVOICEID', 'AMOUNT', 'RECEIVEDDATE', 'PAYMENTMETHOD']) }}) current_rows
