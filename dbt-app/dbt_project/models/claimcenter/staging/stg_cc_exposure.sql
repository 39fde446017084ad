select
  ID as exposure_id, PUBLICID as public_id, CLAIMID as claim_id, EXPOSURETYPE as exposure_type,
  STATE as exposure_state, BATCH_ID as batch_id
from ({{ cda_current('claimcenter', 'cc_exposure', ['PUBLICID', 'CLAIMID', 'EXPOSURETYPE', 'STATE']) }}) current_rows
