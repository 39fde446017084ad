select
  ID as policy_id, PUBLICID as public_id, ACCOUNTID as account_id, PRODUCTCODE as product_code,
  ORIGINALEFFECTIVEDATE as original_effective_date, BATCH_ID as batch_id
from ({{ cda_current('policycenter', 'pc_policy', ['PUBLICID', 'ACCOUNTID', 'PRODUCTCODE', 'ORIGINALEFFECTIVEDATE']) }}) current_rows
