select
  ID as account_id, PUBLICID as public_id, ACCOUNTNUMBER as account_number, ACCOUNTNAME as account_name,
  BATCH_ID as batch_id
from ({{ cda_current('billingcenter', 'bc_account', ['PUBLICID', 'ACCOUNTNUMBER', 'ACCOUNTNAME']) }}) current_rows
