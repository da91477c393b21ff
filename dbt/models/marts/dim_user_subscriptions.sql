-- One row per subscription period of a user (SCD2 from the source's full history): which
-- subscription was in force from valid_from to valid_to (null: still open).
with history as (

    select * from {{ ref('int_users__subscription_history') }}

)

select
    user_id,
    subscription,
    valid_from,
    valid_to,
    valid_to is null as is_last_period
from history
