//! Flash wear of the session store: bytes written per message and page
//! erases per 10,000 messages, for a 32 KiB partition of 4 KiB pages (the
//! sector size of the RP2040's and the ESP32's flash), QoS 1 and QoS 2,
//! with 64-byte payloads. Figures printed with `STORE-FIGURES:`.

use umqtt::packet::{self, Packet, PacketId, Publish, QoS};
use umqtt::store::{BlockingStore, FlashStore, RamFlash, StoreOp};

const PAGE: usize = 4096;
const PAGES: usize = 8;
const MESSAGES: u32 = 10_000;

fn publish(qos: QoS, id: PacketId, n: u32) -> Vec<u8> {
    let payload = format!("{n:064}");
    let mut buf = vec![0u8; 256];
    let p = Publish {
        dup: false,
        qos,
        retain: false,
        topic: "logger/01/data",
        packet_id: Some(id),
        payload: payload.as_bytes(),
    };
    let len = packet::encode(&Packet::Publish(p), &mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// Records what one message costs at `qos`; returns (words, erases,
/// erases of the most erased page).
fn wear(qos: QoS) -> (u64, u64, u64) {
    let mut bytes = vec![0xFFu8; PAGE * PAGES];
    let mut record = [0u8; 256];
    let flash = RamFlash::<PAGE>::new(&mut bytes);
    let mut store = FlashStore::new(flash, 0..(PAGE * PAGES) as u32, &mut record).unwrap();
    for n in 0..MESSAGES {
        let id = PacketId::new((n % 65535 + 1) as u16).unwrap();
        let packet = publish(qos, id, n);
        store.record(StoreOp::Publish { id, packet: &packet }).unwrap();
        if qos == QoS::ExactlyOnce {
            let [hi, lo] = id.get().to_be_bytes();
            store.record(StoreOp::Release { id, packet: &[0x62, 2, hi, lo] }).unwrap();
        }
        store.record(StoreOp::Complete(id)).unwrap();
    }
    let flash = store.into_flash();
    let stats = flash.stats();
    (stats.words_written, stats.erases, stats.erases.div_ceil(PAGES as u64))
}

#[test]
fn store_flash_wear_per_message() {
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let (words, erases, per_page) = wear(qos);
        let per_message = words as f64 * 4.0 / f64::from(MESSAGES);
        // A record is the PUBLISH plus a few words of header: a message
        // costs its bytes a small number of times, not a page.
        assert!(per_message < 400.0, "{per_message} bytes written per message");
        assert!(erases > 0 && erases < u64::from(MESSAGES));
        println!(
            "STORE-FIGURES: flash wear QoS {}: {per_message:.0} bytes written per message \
             ({} B PUBLISH), {erases} page erases per {MESSAGES} messages in a {} KiB partition \
             of {} KiB pages (about {per_page} erase cycles per page: pages are used in turn)",
            qos as u8,
            publish(qos, PacketId::new(1).unwrap(), 0).len(),
            PAGE * PAGES / 1024,
            PAGE / 1024
        );
    }
}
