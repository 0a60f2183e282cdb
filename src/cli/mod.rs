//! Subcommands other than `serve`.

pub mod consume;
pub mod install_hooks;
pub mod query;
pub mod tail;
mod worktree_include;

use crate::config::StoreArgs;
use crate::store::Store;

/// `hivewatch migrate`: opening the store runs the embedded migrations.
pub async fn migrate(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.store_config()?).await?;
    println!("schema up to date: {}", store.describe());
    Ok(())
}
