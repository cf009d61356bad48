#[spin_sdk::redis_subscriber]
async fn on_message(_message: bytes::Bytes) -> anyhow::Result<()> {
    Ok(())
}
