-- Each user as of the as-of instant (var as_of, default: the latest silver event), with the
-- subscription in force then and the region of the home country. The users snapshot reads this.
with users as (

    select * from {{ ref('stg_reference__users') }}

),

history as (

    select * from {{ ref('int_users__subscription_history') }}

),

regions as (

    select * from {{ ref('country_regions') }}

),

as_of as (

    select coalesce({{ as_of_timestamp(ref('stg_spotify__events'), 'event_at') }}, {{ to_utc_timestamp('current_timestamp') }}) as as_of_at

),

current_subscription as (

    -- the period in force at the as-of instant; before a user's first switch (as-of earlier than
    -- the history), the first period
    select
        history.user_id,
        history.subscription,
        history.valid_from as subscription_since
    from history
    cross join as_of
    qualify row_number() over (
        partition by history.user_id
        order by
            case when history.valid_from <= as_of.as_of_at then 0 else 1 end,
            case when history.valid_from <= as_of.as_of_at then history.valid_from end desc,
            history.valid_from
    ) = 1

),

final as (

    select
        users.user_id,
        users.country_code,
        coalesce(regions.region, 'Other') as region,
        users.city,
        users.timezone,
        users.utc_offset_minutes,
        users.primary_device,
        current_subscription.subscription,
        current_subscription.subscription_since
    from users
    left join current_subscription on users.user_id = current_subscription.user_id
    left join regions on users.country_code = regions.country_code

)

select * from final
