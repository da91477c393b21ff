with source as (

    select * from {{ source('reference', 'users') }}
    {{ reference_catalog_filter() }}

),

renamed as (

    select
        user_id,
        upper(country) as country_code,
        city,
        timezone,
        cast(utc_offset_minutes as integer) as utc_offset_minutes,
        primary_device,
        catalog
    from source

)

select * from renamed
