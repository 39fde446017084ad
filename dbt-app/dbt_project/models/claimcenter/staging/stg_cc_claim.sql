select
  ID as claim_id, PUBLICID as public_id, CLAIMNUMBER as claim_number, POLICYNUMBER as policy_number,
  INSUREDCONTACTID as insured_contact_id, STATE as claim_state, LOSSDATE as loss_date,
  REPORTEDDATE as reported_date, BATCH_ID as batch_id
from ({{ cda_current('claimcenter', 'cc_claim', ['PUBLICID', 'CLAIMNUMBER', 'POLICYNUMBER', 'INSUREDCONTACTID', 'STATE', 'LOSSDATE', 'REPORTEDDATE']) }}) current_rows
