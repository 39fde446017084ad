select
  a.account_id, a.account_number, a.account_status, a.holder_contact_id,
  c.display_name as holder_name, c.email as holder_email, a.created_at
from {{ ref('stg_pc_account') }} a
left join {{ ref('stg_pc_contact') }} c on c.contact_id = a.holder_contact_id
