with source as (

    select * from {{ source('bronze', '_loads') }}

),

renamed as (

    select
        batch_id,
        cast(kafka_partition as integer) as kafka_partition,
        cast(start_offset as bigint) as start_offset,
        cast(end_offset as bigint) as end_offset,
        cast(loaded_at as timestamp) as loaded_at
    from source

)

select * from renamed
