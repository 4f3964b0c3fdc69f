"""Drives `cnnlab serve`'s page in a real Chromium (Debian's chromium + chromium-driver,
through Selenium): picks IMAGE with the file input, waits for every model's bars, turns
the Grad-CAM overlay on, waits for the overlays to load, saves a screenshot to SHOT and
prints what the page shows as JSON: {"cards": [{"model", "classes", "overlay_width"}]}.

    python serve_page.py URL IMAGE SHOT
"""

import json
import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def main(url, image, shot):
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1000"]:
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.ID, "served").text.startswith("serving"))
        driver.find_element(By.ID, "file").send_keys(image)
        wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-state") in ("done", "error"))
        error = driver.find_element(By.ID, "error").text
        if error:
            raise SystemExit(f"the page shows an error: {error}")
        driver.find_element(By.ID, "cam").click()
        wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-state") == "done"
                   and all(img.get_attribute("class") == "picture overlay" and
                           d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
                           for img in d.find_elements(By.CSS_SELECTOR, ".card img")))
        cards = []
        for card in driver.find_elements(By.CSS_SELECTOR, ".card"):
            img = card.find_element(By.CSS_SELECTOR, "img")
            cards.append({
                "model": card.get_attribute("data-model"),
                "classes": [n.get_attribute("title") for n in card.find_elements(By.CSS_SELECTOR, ".row .name")],
                "overlay_width": driver.execute_script("return arguments[0].naturalWidth", img),
            })
        driver.save_screenshot(shot)
        print(json.dumps({"cards": cards}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
