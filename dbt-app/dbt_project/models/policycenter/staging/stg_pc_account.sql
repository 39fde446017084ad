select
  ID as account_id, PUBLICID as public_id, ACCOUNTNUMBER as account_number,
  ACCOUNTSTATUS as account_status, ACCOUNTHOLDERCONTACTID as holder_contact_id,
  CREATETIME as created_at, BATCH_ID as batch_id
from ({{ cda_current('policycenter', 'pc_account', ['PUBLICID', 'ACCOUNTNUMBER', 'ACCOUNTSTATUS', 'ACCOUNTHOLDERCONTACTID', 'CREATETIME']) }}) current_rows
