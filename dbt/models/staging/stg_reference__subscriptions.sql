with source as (

    select * from {{ source('reference', 'subscriptions') }}
    {{ reference_catalog_filter() }}

),

renamed as (

    select
        user_id,
        {{ to_utc_timestamp('valid_from') }} as valid_from,  -- UTC wall clock
        subscription,
        catalog
    from source

)

select * from renamed
