select
  ID as transaction_id, PUBLICID as public_id, CLAIMID as claim_id, EXPOSUREID as exposure_id,
  SUBTYPE as transaction_type, cast(AMOUNT as {{ dbt.type_numeric() }}) as amount, STATUS as transaction_status,
  CREATETIME as created_at, BATCH_ID as batch_id
from ({{ cda_current('claimcenter', 'cc_transaction', ['PUBLICID', 'CLAIMID', 'EXPOSUREID', 'SUBTYPE', 'AMOUNT', 'STATUS', 'CREATETIME']) }}) current_rows
